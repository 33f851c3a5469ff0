"""WeChat's web authorisation (网页授权) with ``snsapi_base``: the payer's openid for a JSAPI payment.

The payer's browser goes to ``{oauth_base_url}/connect/oauth2/authorize`` and comes back to the hub with a one-time
``code``; the hub trades it at ``{sns_api_base_url}/sns/oauth2/access_token`` with the official account's AppSecret
for the openid. Both base URLs are account settings (``oauth_base_url``, default https://open.weixin.qq.com;
``sns_api_base_url``, default https://api.weixin.qq.com), as ``api_base_url`` is for the payment API; the AppSecret is
the account secret ``app_secret``. The secret travels only in that server-to-server query, as WeChat specifies: the
transport logs paths, never queries, urllib3's own lines about the call (a retried connect) have their queries
redacted, and no error of the exchange carries the URL, neither in its message nor in its cause or context.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from chalicelib.channels import log_redaction
from chalicelib.channels.base import HttpRequest, Transport
from chalicelib.config.accounts import ChannelAccount
from chalicelib.domain.errors import ChannelError
from chalicelib.domain.value_class import value_class

DEFAULT_OAUTH_BASE = "https://open.weixin.qq.com"
DEFAULT_SNS_API_BASE = "https://api.weixin.qq.com"
# errcodes that mean "this code will never work": the payer must authorise again (a new code), not retry.
CODE_REFUSED = {40029: "invalid code", 40163: "code been used", 42003: "code expired"}


@value_class
class OAuthApp:
    """The official account (appid) whose web authorisation gives the payer's openid, and where to ask."""

    appid: str
    oauth_base_url: str
    sns_api_base_url: str

    @classmethod
    def of(cls, account: ChannelAccount) -> OAuthApp:
        settings = account.config.settings
        return cls(appid=account.setting("appid"),
                   oauth_base_url=(settings.get("oauth_base_url") or DEFAULT_OAUTH_BASE).rstrip("/"),
                   sns_api_base_url=(settings.get("sns_api_base_url") or DEFAULT_SNS_API_BASE).rstrip("/"))


def can_authorise(account: ChannelAccount) -> bool:
    """The account holds the official account's AppSecret, so the hub can learn a payer's openid itself."""
    try:
        account.secrets.get("app_secret")
    except KeyError:
        return False
    return True


def authorize_url(account: ChannelAccount, redirect_uri: str, state: str) -> str:
    """Where the payer's WeChat browser goes; ``snsapi_base`` approves silently. The ``#wechat_redirect`` fragment is
    what WeChat's documentation requires on this link."""
    app = OAuthApp.of(account)
    query = urlencode({"appid": app.appid, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "snsapi_base", "state": state}, quote_via=quote)
    return f"{app.oauth_base_url}/connect/oauth2/authorize?{query}#wechat_redirect"


def exchange_code(transport: Transport, account: ChannelAccount, code: str) -> str:
    """The payer's openid under the account's appid. ``ChannelError``: ``refused`` with the errcode as
    ``channel_code`` when WeChat will not take the code (bad, used or expired), ``retryable`` when it could not be
    asked."""
    app = OAuthApp.of(account)
    query = urlencode({"appid": app.appid, "secret": account.secrets.get("app_secret").reveal(), "code": code,
                       "grant_type": "authorization_code"})
    url = f"{app.sns_api_base_url}/sns/oauth2/access_token"
    failure: ChannelError | None = None
    try:
        response = transport.send(HttpRequest("GET", f"{url}?{query}"), timeout_s=5.0)
    except ChannelError as exc:
        failure = exc
    if failure is not None:
        # A fresh error raised outside the except block: whatever the transport's error chains (an HTTP library's
        # exception whose message is the whole URL, the secret included) is neither its cause nor its context.
        raise ChannelError(f"WeChat web authorisation could not be asked: {log_redaction.redact_queries(str(failure))}",
                           retryable=failure.retryable, channel_code=failure.channel_code)
    if response.status != 200:
        raise ChannelError(f"WeChat web authorisation answered HTTP {response.status}", retryable=response.status >= 500)
    try:
        answer = json.loads(response.body)
    except ValueError as exc:
        raise ChannelError("WeChat web authorisation answered something that is not JSON") from exc
    if not isinstance(answer, dict):
        raise ChannelError("WeChat web authorisation answered something that is not an object")
    errcode = answer.get("errcode")
    if errcode not in (None, 0):
        # errmsg is WeChat's text about the code; it never contains the secret, but keep only the known reason.
        reason = CODE_REFUSED.get(errcode, "refused") if isinstance(errcode, int) else "refused"
        raise ChannelError(f"WeChat refused the authorisation code: errcode {errcode} ({reason})",
                           channel_code=str(errcode), refused=True)
    openid = answer.get("openid")
    if not isinstance(openid, str) or not openid or len(openid) > 128:
        raise ChannelError("WeChat web authorisation answered without an openid")
    return openid
