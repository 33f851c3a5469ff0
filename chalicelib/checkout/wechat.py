"""WeChat Pay inside WeChat's in-app browser: JSAPI, with the payer's openid from WeChat's web authorisation.

The page is opened in WeChat (its User-Agent says ``MicroMessenger``): there a QR code cannot be scanned by the phone
showing it and WeChat refuses H5 payments, so "WeChat Pay" is offered as ``wechat.jsapi``. Paying needs the payer's
openid under the account's appid. The hub sends the browser through ``snsapi_base`` (silent) with a ``state`` that is
128 random bits, stored hashed under the session, good once and for 10 minutes, so it cannot be forged nor replayed
nor carried to another session. The code that comes back is traded server-side for the openid
(``channels/wechat_oauth.py``, outside the wechatpay package so that the page loads none of the payment API's signing code).

The openid is remembered **per session** (``CS#<session>/WXOPENID``), with the appid it belongs to: a retry or a
switch back to WeChat in the same session skips the authorisation; another session, even for the same merchant and
payer, authorises again, so the hub keeps no cross-session profile of a WeChat user.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import observability
from chalicelib.channels import wechat_oauth as oauth
from chalicelib.channels.transport import UrllibTransport
from chalicelib.config.accounts import ChannelAccount
from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.value_class import value_class
from chalicelib.service.routing import account_or_error
from chalicelib.storage import state_repo
from chalicelib.storage.aws import client
from chalicelib.storage.codec import from_item, to_item

if TYPE_CHECKING:
    from chalicelib.checkout.sessions import CheckoutSession

log = logging.getLogger(__name__)
JSAPI = "wechat.jsapi"
WEB_METHODS = ("wechat.native", "wechat.h5", JSAPI)  # what "WeChat Pay" is outside WeChat's browser, and inside
STATE_TTL = timedelta(minutes=10)
# The learnt openid's TTL (``expires_at_epoch``): its session's expiry and this margin (a payer on the page at the
# last second may still retry). DynamoDB deletes expired items within days, not at once, so nothing relies on the
# deletion: an expired session is refused before its openid is read.
OPENID_KEPT_AFTER_SESSION = timedelta(hours=1)
_transport: UrllibTransport | None = None


@value_class
class Openid:
    """A payer's openid and the account the JSAPI attempt must go to: one whose appid the openid belongs to (WeChat
    refuses an order whose appid is not the openid's). ``account_id`` None: the merchant gave the openid, so routing
    chooses as for any payment."""

    value: str
    account_id: str | None


def in_wechat(user_agent: str | None) -> bool:
    return "MicroMessenger" in (user_agent or "")


def jsapi_ready(account: ChannelAccount, payer: dict[str, Any]) -> bool:
    """JSAPI can be paid: the merchant gave the payer's openid, or the hub can ask WeChat for it."""
    return bool(payer.get("openid")) or oauth.can_authorise(account)


def authorisation_origin(currency: str, merchant_id: str) -> str | None:
    """The origin of WeChat's authorisation page for the account JSAPI would use (for the page's form-action)."""
    from urllib.parse import urlsplit

    from chalicelib.service.routing import choose_account

    account = choose_account(JSAPI, currency, merchant_id)
    if not oauth.can_authorise(account):
        return None
    parts = urlsplit(oauth.OAuthApp.of(account).oauth_base_url)
    return f"{parts.scheme}://{parts.netloc}"


def _state_key(session_id: str, state: str) -> dict[str, str]:
    return {"pk": f"CS#{session_id}", "sk": f"WXSTATE#{hashlib.sha256(state.encode()).hexdigest()}"}


def _put(item: dict[str, Any]) -> None:
    client("dynamodb").put_item(TableName=state_repo.state_table(), Item=to_item(item))


def _openid_key(session_id: str) -> dict[str, str]:
    return {"pk": f"CS#{session_id}", "sk": "WXOPENID"}


def known_openid(session: CheckoutSession, account: ChannelAccount) -> Openid | None:
    """The openid to pay with: the merchant's ``payer.openid``, else the one this session learnt for the appid of
    ``account`` (routing's choice now), pinned to ``account``. Learnt under another appid: None (authorise again)."""
    if session.payer.get("openid"):
        return Openid(str(session.payer["openid"]), None)
    held = state_repo.get_item(_openid_key(session.session_id))
    if held and held.get("appid") == account.setting("appid"):
        return Openid(str(held["openid"]), account.account_id)
    return None


def authorise_url(session: CheckoutSession, key: str, account: ChannelAccount, *, remember: bool) -> str:
    state = secrets.token_urlsafe(16)
    now = utcnow()
    # expires_at is the limit take_state enforces; expires_at_epoch lets the table's TTL delete an unused state.
    _put({**_state_key(session.session_id, state), "account_id": account.account_id,
          "created_at": iso(now), "expires_at": iso(now + STATE_TTL), "remember": remember,
          "expires_at_epoch": int((now + STATE_TTL).timestamp())})
    back = f"{settings().public_base_url}/checkout/{session.session_id}/{key}/wechat-oauth"
    return oauth.authorize_url(account, back, state)


def take_state(session: CheckoutSession, state: str) -> dict[str, Any]:
    """The state's record, deleted as it is read (good once). Unknown, used, expired or another session's: 400."""
    if not state or len(state) > 64:
        raise InvalidRequest("state is missing", param="state")
    answer = client("dynamodb").delete_item(
        TableName=state_repo.state_table(), Key=to_item(_state_key(session.session_id, state)),
        ReturnValues="ALL_OLD")
    held = from_item(answer["Attributes"]) if answer.get("Attributes") else None
    if held is None:
        log.warning("checkout %s: WeChat authorisation came back with an unknown or used state", session.session_id,
                    extra=observability.security_event("oauth_state_refused", session_id=session.session_id))
        raise InvalidRequest("state is unknown or already used", param="state")
    if parse_iso(str(held["expires_at"])) <= utcnow():
        raise InvalidRequest("state has expired", param="state")
    return held


def learn_openid(session: CheckoutSession, account_id: str, code: str) -> Openid:
    """Trade the code for the payer's openid under ``account_id``'s appid, remember it for this session, and pin the
    attempt to that account (routing may choose another one meanwhile)."""
    global _transport
    if not code or len(code) > 128:
        raise InvalidRequest("code is missing", param="code")
    account = account_or_error(account_id)
    _transport = _transport or UrllibTransport()
    openid = oauth.exchange_code(_transport, account, code)
    _put({**_openid_key(session.session_id), "openid": openid, "appid": account.setting("appid"),
          "account_id": account.account_id, "learnt_at": iso(utcnow()),
          "expires_at_epoch": int((parse_iso(session.expires_at) + OPENID_KEPT_AFTER_SESSION).timestamp())})
    return Openid(openid, account.account_id)
