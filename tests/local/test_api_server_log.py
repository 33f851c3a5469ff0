"""The local API server's request log shows paths, never queries: a payer's return from WeChat's authorisation
carries its one-time ``code`` and ``state`` in the query (infra/local/api_server.py)."""

from __future__ import annotations

import pytest

from infra.local.api_server import _HubShapedHandler


def test_a_request_line_is_logged_without_its_query(capsys: pytest.CaptureFixture[str]) -> None:
    handler = _HubShapedHandler.__new__(_HubShapedHandler)  # no socket: only the log line is under test
    handler.client_address = ("127.0.0.1", 50000)
    handler.log_message('"%s" %s %s', "GET /checkout/cs_1/key/wechat-oauth?code=0a1b2c-once&state=s3cr3t HTTP/1.1",
                        "302", "-")
    logged = capsys.readouterr().err
    assert "/checkout/cs_1/key/wechat-oauth?<redacted>" in logged and '" 302 -' in logged
    assert "0a1b2c-once" not in logged and "s3cr3t" not in logged
