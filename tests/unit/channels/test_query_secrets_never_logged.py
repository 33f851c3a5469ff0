"""A secret in a channel call's query (WeChat's code exchange sends the AppSecret so, as WeChat specifies) reaches no
log line and no error: not the transport's own line, not urllib3's retry warning or debug lines, not the error's
message, cause, context or traceback, and not the sandbox's request log."""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Iterator

import pytest

from chalicelib.channels import wechat_oauth as oauth
from chalicelib.channels.base import HttpRequest
from chalicelib.channels.log_redaction import redact_queries
from chalicelib.channels.transport import UrllibTransport
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import ChannelError
from sandbox.common.httpserver import BackgroundHTTPServer, Request, Response, Router, json_response

APP_SECRET = "3f1c0ffee5ec2e7a9b8d7c6b5a4f3e2d"  # 32 hex characters, as WeChat's AppSecret


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once (and urllib3 retries it once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def account(sns_base: str) -> ChannelAccount:
    config = ChannelAccountConfig(account_id="wx-oauth", channel="wechatpay", methods=("wechat.jsapi",),
                                  api_base_url=sns_base,
                                  settings={"mchid": "1900000109", "appid": "wx8888888888888888",
                                            "sns_api_base_url": sns_base})
    return ChannelAccount(config, ChannelSecrets({"app_secret": APP_SECRET}))


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def test_a_refused_connect_leaks_the_app_secret_nowhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every urllib3 line, not only the WARNING that production keeps
    with pytest.raises(ChannelError) as raised:
        oauth.exchange_code(UrllibTransport(), account(f"http://127.0.0.1:{closed_port()}"), "code-1")
    error = raised.value
    # urllib3 did retry the connect and said so: the line is there, its query is not
    retried = [r for r in caplog.records if r.name == "urllib3.connectionpool" and "Retrying" in r.getMessage()]
    assert retried and retried[0].levelno == logging.WARNING
    assert "/sns/oauth2/access_token?<redacted>" in retried[0].getMessage()
    logged = everything_logged(caplog)
    assert APP_SECRET not in logged and "secret=" not in logged
    for link in chain(error):
        assert APP_SECRET not in str(link) and APP_SECRET not in repr(link)
    assert list(chain(error)) == [error]  # no urllib3 exception rides along as cause or context
    shown = "".join(traceback.format_exception(error))
    assert APP_SECRET not in shown and "access_token?" not in shown
    assert error.retryable and "NewConnectionError" in str(error)  # what broke is still said


def test_the_transports_error_keeps_no_url_for_any_channel(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{closed_port()}/v1/bills?token=bill-token-7d2e&mchid=1900000109"
    with pytest.raises(ChannelError) as raised:
        UrllibTransport().send(HttpRequest("GET", url), timeout_s=2.0)
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert "bill-token-7d2e" not in "".join(traceback.format_exception(raised.value))
    assert "bill-token-7d2e" not in everything_logged(caplog)


def test_a_logged_urllib3_exception_has_its_query_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """A urllib3 line logged with the exception attached: its traceback text is redacted too."""
    caplog.set_level(logging.DEBUG)
    import urllib3

    try:
        raise urllib3.exceptions.MaxRetryError(None, f"/sns/oauth2/access_token?secret={APP_SECRET}&code=c")  # type: ignore[arg-type]
    except urllib3.exceptions.MaxRetryError:
        logging.getLogger("urllib3.connectionpool").warning("gave up on %s", f"/x?secret={APP_SECRET}", exc_info=True)
    record = caplog.records[-1]
    assert APP_SECRET not in logging.Formatter().format(record)
    assert "Max retries exceeded" in logging.Formatter().format(record)  # the exception is still shown


def test_redaction_leaves_prose_and_paths_alone() -> None:
    assert redact_queries("GET /v3/pay/transactions/jsapi 200") == "GET /v3/pay/transactions/jsapi 200"
    assert redact_queries("who? nobody") == "who? nobody"
    assert redact_queries('"GET /a?b=1&c=2 HTTP/1.1" 200') == '"GET /a?<redacted> HTTP/1.1" 200'
    assert redact_queries("url='/a?secret=s'") == "url='/a?<redacted>'"


def test_the_sandboxs_request_log_shows_paths_only(caplog: pytest.LogCaptureFixture) -> None:
    """The code exchange that works: the openid comes back, and neither the hub's lines, urllib3's debug lines nor the
    sandbox's request log hold the secret."""
    caplog.set_level(logging.DEBUG)
    received: list[Request] = []

    def access_token(request: Request) -> Response:
        received.append(request)
        return json_response(200, {"openid": "o-payer-1", "scope": "snsapi_base"})

    router = Router()
    router.add("GET", "/sns/oauth2/access_token", access_token)
    server = BackgroundHTTPServer(router, lambda request: Response(404, json.dumps({}).encode()))
    base = server.start("127.0.0.1", 0)
    try:
        assert oauth.exchange_code(UrllibTransport(), account(base), "code-2") == "o-payer-1"
    finally:
        server.stop()
    assert received and received[0].query["secret"] == APP_SECRET  # the secret did travel, in the query
    sandbox_lines = [r.getMessage() for r in caplog.records if r.name == "sandbox.http"]
    assert any("/sns/oauth2/access_token?<redacted>" in line for line in sandbox_lines), sandbox_lines
    assert APP_SECRET not in everything_logged(caplog)
