"""PayPal statements: Transaction Search pages fetched as JSON lines, parsed by field name into StatementRow values,
streamed (any chunking), with malformed lines and count mismatches reported by line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paypal_kit import API, NOW, FakeTransport, json_response, make_kit, token_response

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.channels.paypal import PayPalAdapter
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

KIT = make_kit()
ACCOUNT = KIT.account()


def info(code: str = "T0006", value: str = "10.00", fee: str | None = "-0.84", status: str = "S", custom: str = "att_a1",
         transaction_id: str = "2GG279541U471931P", currency: str = "USD") -> dict:
    item = {"paypal_account_id": "2805169001", "transaction_id": transaction_id, "transaction_event_code": code,
            "transaction_initiation_date": "2024-05-19T16:30:00+0000", "transaction_updated_date": "2024-05-19T16:30:00+0000",
            "transaction_amount": {"currency_code": currency, "value": value}, "transaction_status": status,
            "invoice_id": custom, "custom_field": custom}
    if fee is not None:
        item["fee_amount"] = {"currency_code": currency, "value": fee}
    return {"transaction_info": item}


def page(details: list, *, page_no: int = 1, total_pages: int = 1, total_items: int | None = None,
         refreshed: str = "2024-05-21T06:00:00+0000") -> dict:
    return {"transaction_details": details, "account_number": "2805169001", "start_date": "2024-05-20T00:00:00+0800",
            "end_date": "2024-05-20T23:59:59+0800", "last_refreshed_datetime": refreshed, "page": page_no,
            "total_items": len(details) if total_items is None else total_items, "total_pages": total_pages}


def lines(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


META = {"paypal_transaction_search": {"total_items": 3}}
STATEMENT = lines(META, info(), info("T1107", "-2.00", None, custom="re_b2", transaction_id="1JU08902781691411"),
                  info("T0400", "-100.00", None, custom=""))


def parse(data: bytes) -> list:
    return list(PayPalAdapter(FakeTransport()).parse_statement(ACCOUNT, [data]))


def test_rows_are_read_by_field_name():
    payment, refund = parse(STATEMENT)
    assert payment == StatementRow(kind=StatementKind.PAYMENT, object_id="att_a1", channel_ref="2GG279541U471931P",
                                   amount=Money(1000, "USD"), status="succeeded",
                                   occurred_at=datetime(2024, 5, 19, 16, 30, tzinfo=UTC), fee=Money(84, "USD"), line=2)
    assert (refund.kind, refund.object_id, refund.amount, refund.fee, refund.line) == (
        StatementKind.REFUND, "re_b2", Money(200, "USD"), None, 3)


def test_field_order_does_not_matter_and_withdrawals_are_skipped():
    shuffled = [{"transaction_info": dict(reversed(list(info()["transaction_info"].items())))}]
    rows = parse(lines({"paypal_transaction_search": {"total_items": 1}}, *shuffled))
    assert len(rows) == 1 and rows[0].amount == Money(1000, "USD")


@pytest.mark.parametrize(("letter", "word"), [("S", "succeeded"), ("P", "pending"), ("D", "denied"), ("V", "reversed"),
                                               ("X", "x")])
def test_statuses(letter, word):
    assert parse(lines({"paypal_transaction_search": {"total_items": 1}}, info(status=letter)))[0].status == word


def test_zero_decimal_currency_and_a_returned_fee():
    rows = parse(lines({"paypal_transaction_search": {"total_items": 2}}, info(value="1500", fee="-70", currency="JPY"),
                       info("T1107", "-500", "12", currency="JPY")))
    assert (rows[0].amount, rows[0].fee) == (Money(1500, "JPY"), Money(70, "JPY"))
    assert rows[1].fee == Money(-12, "JPY")  # PayPal gave part of a fee back


@given(st.lists(st.integers(min_value=1, max_value=len(STATEMENT) - 1), max_size=8, unique=True))
@settings(max_examples=50)
def test_any_chunking_gives_the_same_rows(cuts):
    points = [0, *sorted(cuts), len(STATEMENT)]
    chunks = [STATEMENT[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert list(PayPalAdapter(FakeTransport()).parse_statement(ACCOUNT, chunks)) == parse(STATEMENT)


@pytest.mark.parametrize(("data", "line"), [
    (lines(META, info(value="1O.OO")), 2),
    (lines(META, info(), {"transaction_info": {"transaction_event_code": "T0006"}}), 3),
    (lines(META) + b"{not json\n", 2),
    (lines(META, info(code="0006")), 2),
    (lines(META, info(value="10.001")), 2),
    (lines(info()), 1),  # no metadata line first
    (b"", 1),
])
def test_malformed_statements_name_the_line(data, line):
    with pytest.raises(ChannelError, match=f"line {line}"):
        parse(data)


def test_a_row_count_that_disagrees_with_total_items_fails():
    with pytest.raises(ChannelError, match="total_items"):
        parse(lines({"paypal_transaction_search": {"total_items": 5}}, info()))


def test_fetch_pages_through_the_day_in_beijing_time():
    first = page([info(), info(custom="att_a2", transaction_id="AAAAAAAAAAAAAAAAA")], total_pages=2, total_items=3)
    second = page([info(custom="att_a3", transaction_id="BBBBBBBBBBBBBBBBB")], page_no=2, total_pages=2, total_items=3)
    transport = FakeTransport([token_response(), json_response(200, first), json_response(200, second)])
    paypal = PayPalAdapter(transport, clock=lambda: NOW)
    chunks = list(paypal.fetch_statement(ACCOUNT, "2024-05-20"))
    first_url = transport.requests[1].url
    assert first_url.startswith(f"{API}/v1/reporting/transactions?")
    assert "start_date=2024-05-20T00%3A00%3A00%2B08%3A00" in first_url
    assert "end_date=2024-05-20T23%3A59%3A59%2B08%3A00" in first_url
    assert "page=1" in first_url and "page=2" in transport.requests[2].url and "fields=transaction_info" in first_url
    rows = list(paypal.parse_statement(ACCOUNT, chunks))
    assert [r.object_id for r in rows] == ["att_a1", "att_a2", "att_a3"]


def test_a_day_paypal_has_not_fully_refreshed_is_not_published_yet():
    transport = FakeTransport([token_response(), json_response(200, page([], refreshed="2024-05-20T15:00:00+0000"))])
    with pytest.raises(ChannelError) as caught:
        list(PayPalAdapter(transport, clock=lambda: NOW).fetch_statement(ACCOUNT, "2024-05-20"))
    assert caught.value.retryable


@pytest.mark.parametrize("day", ["20240520", "2024-13-01", "yesterday"])
def test_a_bad_day_is_refused_before_any_request(day):
    with pytest.raises(InvalidRequest):
        PayPalAdapter(FakeTransport()).fetch_statement(ACCOUNT, day)
