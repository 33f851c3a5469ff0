"""The WeChat Pay sandbox's statement controls: faults that make its trade bill differ from its books, orders
it loses (``forget``), and backdated payments, all over real HTTP. Bills are read with the protocol-level
``parse_bill`` of the sandbox tests and, where it matters, with the hub's own parser."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib.channels.wechatpay.bill import parse_trade_bill
from chalicelib.domain.errors import ChannelError
from sandbox.wechatpay import WeChatPaySandbox
from tests.sandbox.test_wechatpay_sandbox import BEIJING, Merchant, Receiver, control, parse_bill, pay, register

TODAY = datetime.now(BEIJING).date()


@pytest.fixture
def sandbox() -> Iterator[WeChatPaySandbox]:
    box = WeChatPaySandbox(retry_scale=0.01, refund_settle_s=0.0)
    box.start("127.0.0.1", 0)
    yield box
    box.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def merchant(sandbox: WeChatPaySandbox) -> Merchant:
    return register(sandbox)


def download(merchant: Merchant, day: str = TODAY.isoformat()) -> bytes:
    listing = merchant.call("GET", f"/v3/bill/tradebill?bill_date={day}&bill_type=ALL")
    assert listing.status_code == 200, listing.text
    info = listing.json()
    content = merchant.call("GET", info["download_url"].removeprefix(merchant.base_url)).content
    assert hashlib.sha1(content).hexdigest() == info["hash_value"]  # a faulty bill is still the channel's file
    return content


def bill(merchant: Merchant, day: str = TODAY.isoformat()) -> tuple[list[dict[str, str]], dict[str, str]]:
    return parse_bill(download(merchant, day).decode("utf-8"))


def fault(sandbox: WeChatPaySandbox, kind: str, **options: Any) -> requests.Response:
    return control(sandbox, "POST", "/_sandbox/statement-faults", {"day": TODAY.isoformat(), "kind": kind, **options})


def paid_order(merchant: Merchant, receiver: Receiver, sandbox: WeChatPaySandbox, no: str, total: int) -> None:
    assert merchant.jsapi(no, receiver.url, total=total).status_code == 200
    pay(sandbox, no)


def assert_summary_matches_rows(rows: list[dict[str, str]], summary: dict[str, str]) -> None:
    def fen(text: str) -> int:
        sign = -1 if text.startswith("-") else 1
        whole, _, cents = text.lstrip("-").partition(".")
        return sign * (int(whole) * 100 + int(cents[:2]))

    assert int(summary["总交易单数"]) == len(rows)
    assert fen(summary["应结订单总金额"]) == sum(fen(r["应结订单金额"]) for r in rows)
    assert fen(summary["退款总金额"]) == sum(fen(r["退款金额"]) for r in rows)


@pytest.fixture
def day_of_business(sandbox: WeChatPaySandbox, merchant: Merchant, receiver: Receiver) -> Merchant:
    paid_order(merchant, receiver, sandbox, "ORDER000001", 10000)
    paid_order(merchant, receiver, sandbox, "ORDER000002", 500)
    assert merchant.refund("ORDER000001", "REFUND0001", 2550, total=10000).status_code == 200
    return merchant


def test_bill_without_faults_is_the_books(day_of_business: Merchant) -> None:
    rows, summary = bill(day_of_business)
    assert sorted((r["交易状态"], r["商户订单号"]) for r in rows) == [
        ("REFUND", "ORDER000001"), ("SUCCESS", "ORDER000001"), ("SUCCESS", "ORDER000002")]
    assert_summary_matches_rows(rows, summary)


@pytest.mark.parametrize(("kind", "options", "check"), [
    ("drop_row", {"out_trade_no": "ORDER000002"},
     lambda rows: "ORDER000002" not in {r["商户订单号"] for r in rows}),
    ("drop_row", {"out_refund_no": "REFUND0001"},
     lambda rows: [r["交易状态"] for r in rows].count("REFUND") == 0 and len(rows) == 2),
    ("amount", {"out_trade_no": "ORDER000002", "delta": 7},
     lambda rows: _payment(rows, "ORDER000002")["应结订单金额"] == "5.07"),
    ("amount", {"out_refund_no": "REFUND0001", "delta": -50},
     lambda rows: _refund(rows)["退款金额"] == "25.00"),
    ("currency", {"out_trade_no": "ORDER000002", "currency": "USD"},
     lambda rows: _payment(rows, "ORDER000002")["货币种类"] == "USD"),
    ("status", {"out_trade_no": "ORDER000002", "status": "REVOKED"},
     lambda rows: _payment(rows, "ORDER000002", "REVOKED")["应结订单金额"] == "5.00"),
    ("status", {"out_refund_no": "REFUND0001", "status": "PROCESSING"},
     lambda rows: _refund(rows)["退款状态"] == "PROCESSING"),
    ("fee", {"out_trade_no": "ORDER000001", "fee": 99},
     lambda rows: _payment(rows, "ORDER000001")["手续费"] == "0.99000"),
    ("duplicate_row", {"out_trade_no": "ORDER000002"},
     lambda rows: [r["商户订单号"] for r in rows if r["交易状态"] == "SUCCESS"].count("ORDER000002") == 2),
    ("extra_row", {"out_trade_no": "att_neverheardof", "amount": 1234},
     lambda rows: _payment(rows, "att_neverheardof")["应结订单金额"] == "12.34"),
    ("extra_row", {"out_trade_no": "ORDER000002", "out_refund_no": "re_neverheardof", "amount": 100},
     lambda rows: [r["商户退款单号"] for r in rows if r["交易状态"] == "REFUND"] == ["REFUND0001", "re_neverheardof"]),
])
def test_each_fault_changes_the_bill_and_keeps_it_consistent(sandbox: WeChatPaySandbox, day_of_business: Merchant,
                                                            kind: str, options: dict[str, Any], check: Any) -> None:
    assert fault(sandbox, kind, **options).status_code == 200
    rows, summary = bill(day_of_business)
    assert check(rows)
    assert_summary_matches_rows(rows, summary)
    hub_rows = list(parse_trade_bill([download(day_of_business)]))  # the hub's parser reads it as a real bill
    assert len(hub_rows) == len(rows) + 1


def _payment(rows: list[dict[str, str]], out_trade_no: str, state: str = "SUCCESS") -> dict[str, str]:
    (row,) = [r for r in rows if r["商户订单号"] == out_trade_no and r["交易状态"] == state]
    return row


def _refund(rows: list[dict[str, str]]) -> dict[str, str]:
    (row,) = [r for r in rows if r["交易状态"] == "REFUND"]
    return row


def test_faults_last_until_cleared_and_a_bill_downloads_the_same_twice(sandbox: WeChatPaySandbox,
                                                                      day_of_business: Merchant) -> None:
    assert fault(sandbox, "drop_row", out_trade_no="ORDER000002").status_code == 200
    assert fault(sandbox, "extra_row", out_trade_no="att_extra", amount=10).status_code == 200
    assert download(day_of_business) == download(day_of_business)
    listed = control(sandbox, "GET", "/_sandbox/statement-faults").json()["faults"]
    assert [f["kind"] for f in listed] == ["drop_row", "extra_row"]
    cleared = control(sandbox, "DELETE", "/_sandbox/statement-faults")
    assert cleared.json() == {"removed": 2, "faults": []}
    assert len(bill(day_of_business)[0]) == 3


def test_faults_can_be_scoped_to_one_merchant(sandbox: WeChatPaySandbox, day_of_business: Merchant,
                                              receiver: Receiver) -> None:
    other = register(sandbox, mchid="1900000222")
    paid_order(other, receiver, sandbox, "ORDER000009", 300)
    assert fault(sandbox, "corrupt", mchid=other.mchid).status_code == 200
    with pytest.raises(ChannelError, match="line 2"):
        list(parse_trade_bill([download(other)]))
    assert len(bill(day_of_business)[0]) == 3
    control(sandbox, "DELETE", f"/_sandbox/statement-faults?mchid={other.mchid}")
    assert len(bill(other)[0]) == 1


def test_corrupt_bill_fails_the_hub_parser_with_its_line(sandbox: WeChatPaySandbox, day_of_business: Merchant) -> None:
    assert fault(sandbox, "corrupt").status_code == 200
    with pytest.raises(ChannelError, match="trade bill line 2"):
        list(parse_trade_bill([download(day_of_business)]))


def test_an_extra_row_makes_a_bill_on_a_quiet_day(sandbox: WeChatPaySandbox, merchant: Merchant) -> None:
    quiet = (TODAY - timedelta(days=40)).isoformat()
    empty = merchant.call("GET", f"/v3/bill/tradebill?bill_date={quiet}&bill_type=ALL")
    assert (empty.status_code, empty.json()["code"]) == (400, "NO_STATEMENT_EXIST")
    answer = control(sandbox, "POST", "/_sandbox/statement-faults", {
        "day": quiet, "kind": "extra_row", "out_trade_no": "att_ghost", "amount": 800,
        "occurred_at": f"{quiet} 23:59:58"})
    assert answer.status_code == 200
    rows, summary = bill(merchant, quiet)
    assert [(r["商户订单号"], r["交易时间"], r["应结订单金额"]) for r in rows] == [
        ("att_ghost", f"{quiet} 23:59:58", "8.00")]
    assert summary["总交易单数"] == "1"


@pytest.mark.parametrize("body", [
    {"kind": "explode"},
    {"kind": "drop_row"},  # no row named
    {"kind": "amount", "out_trade_no": "X", "delta": "7"},
    {"kind": "currency", "out_trade_no": "X", "currency": "usd"},
    {"kind": "extra_row", "out_trade_no": "X", "amount": 0},
    {"kind": "extra_row", "out_trade_no": "X", "amount": 5, "occurred_at": "yesterday"},
    {"kind": "fee", "out_trade_no": "X", "fee": True},
    {"kind": "drop_row", "out_trade_no": "X", "day": "2024/05/19"},
])
def test_bad_fault_requests_are_400(sandbox: WeChatPaySandbox, body: dict[str, Any]) -> None:
    answer = control(sandbox, "POST", "/_sandbox/statement-faults", {"day": TODAY.isoformat(), **body})
    assert (answer.status_code, answer.json()["code"]) == (400, "PARAM_ERROR")


def test_a_forgotten_order_is_unknown_everywhere(sandbox: WeChatPaySandbox, day_of_business: Merchant) -> None:
    forgotten = control(sandbox, "POST", "/_sandbox/orders/ORDER000001/forget")
    assert forgotten.status_code == 200 and forgotten.json()["forgotten"]["out_trade_no"] == "ORDER000001"
    query = day_of_business.query("ORDER000001")
    assert (query.status_code, query.json()["code"]) == (404, "ORDER_NOT_EXIST")
    refund = day_of_business.call("GET", "/v3/refund/domestic/refunds/REFUND0001")
    assert (refund.status_code, refund.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    rows, _ = bill(day_of_business)
    assert {r["商户订单号"] for r in rows} == {"ORDER000002"}
    assert control(sandbox, "POST", "/_sandbox/orders/ORDER000001/forget").status_code == 404
    assert control(sandbox, "GET", "/_sandbox/orders/ORDER000001").status_code == 404


def test_a_backdated_payment_lands_on_its_own_day(sandbox: WeChatPaySandbox, merchant: Merchant,
                                                  receiver: Receiver) -> None:
    yesterday = TODAY - timedelta(days=1)
    assert merchant.jsapi("ORDER000003", receiver.url, total=300).status_code == 200
    order = pay(sandbox, "ORDER000003", paid_at=f"{yesterday.isoformat()}T23:59:58+08:00")
    assert order["success_time"] == f"{yesterday.isoformat()}T23:59:58+08:00"
    rows, _ = bill(merchant, yesterday.isoformat())
    assert [(r["商户订单号"], r["交易时间"]) for r in rows] == [("ORDER000003", f"{yesterday} 23:59:58")]
    today = merchant.call("GET", f"/v3/bill/tradebill?bill_date={TODAY.isoformat()}&bill_type=ALL")
    assert today.json()["code"] == "NO_STATEMENT_EXIST"
    bad = control(sandbox, "POST", "/_sandbox/pay", {"out_trade_no": "ORDER000003", "paid_at": "yesterday"})
    assert bad.status_code == 400
