"""Statements: the two Reporting API runs fetched through a fake transport, and the balance report CSVs parsed
by header name into rows and one summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from stripe_kit import API, FakeTransport, form, make_account, ok

from chalicelib.channels.base import HttpResponse, StatementKind, StatementRow, StatementSummary
from chalicelib.channels.stripe import StripeAdapter
from chalicelib.channels.stripe.reports import ITEMIZED_COLUMNS, ReportFetcher, day_interval
from chalicelib.domain.errors import ChannelError, InvalidRequest
from chalicelib.domain.money import Money

ITEMIZED = (
    "balance_transaction_id,created_utc,created,reporting_category,currency,gross,fee,net,source_id,charge_id,"
    "payment_intent_id,customer_facing_amount,customer_facing_currency,description,payment_metadata[attempt_id],"
    "refund_metadata[refund_id]\n"
    "txn_1,2024-05-19 16:30:00,2024-05-20 00:30:00,charge,usd,10.00,0.59,9.41,ch_1,ch_1,pi_1,10.00,usd,"
    "\"Tea, green\",att_a,\n"
    "txn_2,2024-05-20 01:00:00,2024-05-20 09:00:00,refund,usd,-3.00,0.00,-3.00,re_1,ch_1,pi_1,-3.00,usd,"
    "REFUND FOR CHARGE,att_a,re_ours1\n"
    "txn_3,2024-05-20 02:00:00,2024-05-20 10:00:00,charge,jpy,500,15,485,ch_2,ch_2,pi_2,500,jpy,,att_b,\n"
    "txn_4,2024-05-20 03:00:00,2024-05-20 11:00:00,fee,usd,-1.00,0.00,-1.00,,,,,,Radar fee,,\n"
    "txn_5,2024-05-20 04:00:00,2024-05-20 12:00:00,refund_failure,usd,3.00,0.00,3.00,re_1,ch_1,pi_1,3.00,usd,,att_a,"
    "re_ours1\n"
)
SUMMARY = ("reporting_category,currency,count,gross,fee,net\n"
           "charge,usd,1,10.00,0.59,9.41\nrefund,usd,1,-3.00,0.00,-3.00\nfee,usd,1,-1.00,0.00,-1.00\n")


def _parse(*texts: str) -> list[StatementRow | StatementSummary]:
    data = "\n".join(texts).encode()
    chunks = [data[i:i + 7] for i in range(0, len(data), 7)]  # split mid-line and mid-character on purpose
    return list(StripeAdapter(FakeTransport()).parse_statement(make_account(), iter(chunks)))


def test_rows_by_reporting_category() -> None:
    usd_only = ITEMIZED.replace(",jpy,500,15,485,ch_2,ch_2,pi_2,500,jpy", ",usd,5.00,0.45,4.55,ch_2,ch_2,pi_2,5.00,usd")
    *rows, summary = _parse(usd_only, SUMMARY)
    charge, refund, second, failure = rows
    assert charge == StatementRow(kind=StatementKind.PAYMENT, object_id="att_a", channel_ref="pi_1",
                                  amount=Money(1000, "USD"), status="succeeded",
                                  occurred_at=datetime(2024, 5, 19, 16, 30, tzinfo=UTC), fee=Money(59, "USD"),
                                  attempt_id="att_a", line=2)
    assert (refund.kind, refund.object_id, refund.channel_ref, refund.amount, refund.attempt_id, refund.status) == (
        StatementKind.REFUND, "re_ours1", "re_1", Money(300, "USD"), "att_a", "succeeded")
    assert second.amount == Money(500, "USD")
    assert (failure.kind, failure.status, failure.line) == (StatementKind.REFUND, "failed", 6)
    assert summary == StatementSummary(count=2, payments=Money(1000, "USD"), refunds=Money(300, "USD"),
                                       fees=Money(59, "USD"), settlement=Money(541, "USD"))


def test_zero_decimal_rows_and_multi_currency_day_without_summary() -> None:
    rows = _parse(ITEMIZED, SUMMARY + "charge,jpy,1,500,15,485\n")
    assert not any(isinstance(r, StatementSummary) for r in rows)
    jpy = [r for r in rows if isinstance(r, StatementRow) and r.object_id == "att_b"][0]
    assert (jpy.amount, jpy.fee) == (Money(500, "JPY"), Money(15, "JPY"))


def test_columns_are_found_by_name_in_any_order() -> None:
    reordered = "fee,gross,currency,reporting_category,created_utc,balance_transaction_id,payment_metadata[attempt_id]\n" \
                "0.10,1.00,usd,charge,2024-05-20 00:00:00,txn_9,att_z\n"
    [row] = _parse(reordered)
    assert (row.object_id, row.amount, row.fee, row.channel_ref) == ("att_z", Money(100, "USD"), Money(10, "USD"), None)


def test_presentment_amount_is_used_when_settled_in_another_currency() -> None:
    text = ("balance_transaction_id,created_utc,reporting_category,currency,gross,fee,customer_facing_amount,"
            "customer_facing_currency,payment_metadata[attempt_id]\n"
            "txn_1,2024-05-20 00:00:00,charge,usd,6.80,0.50,50.00,hkd,att_fx\n")
    [row] = _parse(text)
    assert (row.amount, row.fee) == (Money(5000, "HKD"), Money(50, "USD"))


@pytest.mark.parametrize(("text", "line"), [
    (ITEMIZED + "txn_x,2024-05-20 00:00:00,charge\n", 7),
    (ITEMIZED.replace("10.00,0.59", "10.0.0,0.59"), 2),
    (ITEMIZED.replace("2024-05-20 02:00:00", "yesterday"), 4),
    (ITEMIZED.replace("charge,jpy,500,", "charge,jpy,500.5,"), 4),
    (ITEMIZED.replace(",usd,10.00", ",zzz,10.00"), 2),
    ("id,amount\n1,2\n", 1),
    ("balance_transaction_id,created_utc\ntxn_1,2024-05-20 00:00:00\n", 1),
    (ITEMIZED + "\n" + SUMMARY + "\n" + SUMMARY, 13),
    (ITEMIZED + "\n" + SUMMARY.replace("charge,usd,1,", "charge,usd,one,"), 9),
    (ITEMIZED.replace('"Tea, green"', '"Tea'), 2),
])
def test_malformed_reports_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ChannelError, match=f"line {line}"):
        _parse(text)


def test_invalid_utf8_is_a_channel_error() -> None:
    with pytest.raises(ChannelError):
        list(StripeAdapter(FakeTransport()).parse_statement(make_account(), [ITEMIZED.encode() + b"\xff\xfe\n"]))


# -- fetching -----------------------------------------------------------------------------------------------------


def _report_type(end: int) -> HttpResponse:
    return ok({"id": "x", "object": "reporting.report_type", "data_available_start": 1_500_000_000,
               "data_available_end": end})


def _run(status: str, run_id: str = "frr_1", file_id: str = "file_1") -> HttpResponse:
    result = {"id": file_id, "object": "file", "url": f"https://files.stripe.com/v1/files/{file_id}/contents"}
    return ok({"id": run_id, "object": "reporting.report_run", "status": status,
               "result": result if status == "succeeded" else None})


def _csv(text: str) -> HttpResponse:
    return HttpResponse(200, {"content-type": "text/csv"}, text.encode())


def test_fetch_runs_both_reports_for_the_beijing_day_and_downloads_from_the_files_host() -> None:
    start, end = day_interval("2024-05-20")
    assert (start, end) == (1716134400, 1716220800)  # 2024-05-20 00:00 +08:00 .. next midnight
    transport = FakeTransport([_report_type(end), _run("succeeded"), _csv(ITEMIZED),
                               _report_type(end), _run("succeeded", "frr_2", "file_2"), _csv(SUMMARY)])
    adapter = StripeAdapter(transport)
    account = make_account(files_base_url="https://files.stripe.example")
    parsed = list(adapter.parse_statement(account, adapter.fetch_statement(account, "2024-05-20")))
    assert isinstance(parsed[-1], StatementSummary) and len(parsed) == 5
    types_request, run_request, download = transport.requests[:3]
    assert types_request.url == f"{API}/v1/reporting/report_types/balance_change_from_activity.itemized.3"
    sent = form(run_request)
    assert run_request.headers["Idempotency-Key"].startswith(
        "payhub:report:balance_change_from_activity.itemized.3:2024-05-20:")
    assert (sent["parameters[interval_start]"], sent["parameters[interval_end]"]) == (str(start), str(end))
    assert sent["parameters[timezone]"] == "Asia/Shanghai"
    assert [sent[f"parameters[columns][{n}]"] for n in range(len(ITEMIZED_COLUMNS))] == list(ITEMIZED_COLUMNS)
    # Only the path of the file URL is used; the key goes to the configured files host.
    assert download.url == "https://files.stripe.example/v1/files/file_1/contents"
    assert download.headers["Authorization"].startswith("Bearer sk_test_")


def test_fetch_before_the_day_is_published_is_retryable() -> None:
    _, end = day_interval("2024-05-20")
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(FakeTransport([_report_type(end - 1)])).fetch_statement(make_account(), "2024-05-20")
    assert caught.value.retryable and caught.value.channel_code == "REPORT_NOT_READY"


def test_fetch_polls_a_pending_run_within_its_budget() -> None:
    _, end = day_interval("2024-05-20")
    slept: list[float] = []
    clock = iter([0.0, 1.0, 2.0, 0.0, 1.0])
    transport = FakeTransport([_report_type(end), _run("pending"), _run("succeeded"), _csv(ITEMIZED),
                               _report_type(end), _run("succeeded", "frr_2"), _csv(SUMMARY)])
    client_adapter = StripeAdapter(transport)
    fetcher = ReportFetcher(client_adapter._client, sleep=slept.append, monotonic=lambda: next(clock))
    adapter = StripeAdapter(transport, report_fetcher=fetcher)
    assert list(adapter.fetch_statement(make_account(), "2024-05-20"))
    assert slept == [2.0]
    assert transport.requests[2].url == f"{API}/v1/reporting/report_runs/frr_1"


@pytest.mark.parametrize(("answers", "code"), [
    ([_run("pending")], "REPORT_PENDING"),
    ([ok({"id": "frr_1", "status": "failed", "error": "internal"})], "REPORT_FAILED"),
])
def test_fetch_gives_up_retryably(answers: list[Any], code: str) -> None:
    _, end = day_interval("2024-05-20")
    transport = FakeTransport([_report_type(end), *answers])
    fetcher = ReportFetcher(StripeAdapter(transport)._client, sleep=lambda s: None, monotonic=lambda: 0.0,
                            poll_budget_s=0.0)
    with pytest.raises(ChannelError) as caught:
        StripeAdapter(transport, report_fetcher=fetcher).fetch_statement(make_account(), "2024-05-20")
    assert caught.value.retryable and caught.value.channel_code == code


def test_fetch_refuses_a_file_url_that_is_not_a_stripe_file() -> None:
    _, end = day_interval("2024-05-20")
    bad = ok({"id": "frr_1", "status": "succeeded", "result": {"url": "https://evil.example/steal"}})
    with pytest.raises(ChannelError, match="file"):
        StripeAdapter(FakeTransport([_report_type(end), bad])).fetch_statement(make_account(), "2024-05-20")


def test_fetch_checks_the_file_size_stripe_stated() -> None:
    _, end = day_interval("2024-05-20")
    run = ok({"id": "frr_1", "status": "succeeded", "result": {
        "id": "file_1", "size": len(ITEMIZED) + 1, "url": "https://files.stripe.com/v1/files/file_1/contents"}})
    with pytest.raises(ChannelError, match="bytes") as caught:
        StripeAdapter(FakeTransport([_report_type(end), run, _csv(ITEMIZED)])).fetch_statement(make_account(), "2024-05-20")
    assert caught.value.retryable


def test_fetch_refuses_a_bad_day() -> None:
    with pytest.raises(InvalidRequest):
        StripeAdapter(FakeTransport()).fetch_statement(make_account(), "20240520")
