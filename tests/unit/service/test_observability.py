"""JsonFormatter: one JSON object a line, with the caller's ``extra`` fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.observability import JsonFormatter


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("payhub.test.observability")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    # Split on "\n" only: str.splitlines() would also split on U+2028, which is valid raw inside JSON.
    return [json.loads(line) for line in stream.getvalue().split("\n") if line]


def test_basic_fields(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("payment %s succeeded", "pay_1")
    [entry] = lines(stream)
    assert entry["level"] == "INFO" and entry["logger"] == "payhub.test.observability"
    assert entry["message"] == "payment pay_1 succeeded"
    assert len(entry["time"]) == 19 and entry["time"][10] == "T"


def test_extra_fields_included(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.warning("late success", extra={"payment_id": "pay_1", "attempt_id": "att_1", "amount": 8888,
                                          "refunded": True, "tags": ["a", "b"], "ctx": {"k": "v"}})
    [entry] = lines(stream)
    assert entry["payment_id"] == "pay_1" and entry["attempt_id"] == "att_1" and entry["amount"] == 8888
    assert entry["refunded"] is True and entry["tags"] == ["a", "b"] and entry["ctx"] == {"k": "v"}
    # None of logging's own record attributes leak into the line.
    assert not {"args", "msg", "levelno", "pathname", "lineno", "created", "thread", "exc_info"} & set(entry)


def test_output_is_one_line_of_valid_json_whatever_the_content(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.error('quote " backslash \\ newline \n tab \t 支付成功 \u2028', extra={
        "decimal": Decimal("0.006"), "obj": object(), "bytes": b"\x00\xff", "set": {1}})
    raw = stream.getvalue()
    assert raw.count("\n") == 1  # a multi-line message stays on one log line
    [entry] = lines(stream)
    assert "支付成功" in entry["message"] and entry["decimal"] == "0.006"
    assert isinstance(entry["obj"], str) and isinstance(entry["bytes"], str)


def test_exception_included(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra={"payment_id": "pay_1"})
    [entry] = lines(stream)
    assert entry["level"] == "ERROR" and entry["payment_id"] == "pay_1"
    assert "ValueError: boom" in entry["exception"] and "Traceback" in entry["exception"]


def test_format_without_handler() -> None:
    record = logging.makeLogRecord({"msg": "x=%d", "args": (5,), "levelname": "DEBUG", "name": "n",
                                    "request_id": "req_1"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry == {"level": "DEBUG", "logger": "n", "message": "x=5", "time": entry["time"], "request_id": "req_1"}
