"""The SQS batch loop every worker runs: partial batch failures, in Lambda's event and response shapes."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from functions.sqs_batch import sqs_handler


def event(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {},
                         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:ap-east-1:123456789012:q"}
                        for i, body in enumerate(bodies)]}


def test_each_message_is_handled_once_in_order_and_none_reported():
    seen: list[dict[str, Any]] = []
    handler = sqs_handler(seen.append)
    assert handler(event(json.dumps({"n": 1}), json.dumps({"n": 2})), None) == {"batchItemFailures": []}
    assert seen == [{"n": 1}, {"n": 2}]


def test_only_the_failed_messages_are_reported_and_the_rest_still_run():
    seen: list[int] = []

    def handle(body: dict[str, Any]) -> None:
        if body["n"] == 2:
            raise RuntimeError("channel unavailable")
        seen.append(body["n"])

    result = sqs_handler(handle)(event(json.dumps({"n": 1}), json.dumps({"n": 2}), "not json", json.dumps({"n": 4})),
                                 None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert seen == [1, 4]


def test_a_wholly_failed_batch_is_reported_not_raised():
    def handle(body: dict[str, Any]) -> None:
        raise KeyError("object_id")

    result = sqs_handler(handle)(event(json.dumps({}), json.dumps({})), None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


def test_an_empty_event_reports_nothing():
    assert sqs_handler(lambda body: None)({"Records": []}, None) == {"batchItemFailures": []}


def test_a_failure_is_logged_with_its_message_id_and_never_its_body(caplog: pytest.LogCaptureFixture):
    def handle(body: dict[str, Any]) -> None:
        raise ValueError("unknown refund command")

    with caplog.at_level(logging.WARNING, logger="functions.sqs_batch"):
        sqs_handler(handle)(event(json.dumps({"command": "x", "token": "tok_do_not_log"})), None)
    [record] = [r for r in caplog.records if r.name == "functions.sqs_batch"]
    assert record.levelno == logging.WARNING and record.message_id == "m0"  # type: ignore[attr-defined]
    assert record.exc_info is not None and "unknown refund command" in caplog.text
    assert "tok_do_not_log" not in caplog.text
