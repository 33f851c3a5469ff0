"""The hub export reader: DynamoDB JSON lines (plain or gzip) of recon-indexed items, as the matching engine reads them."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.config.fee_schedule import expected_fee
from chalicelib.domain.clock import parse_iso
from chalicelib.domain.money import Money
from chalicelib.recon import hub_records
from chalicelib.recon.day_records import record_from_item, record_tuple_from_item
from chalicelib.recon.hub_records import ExportMalformed, expected_fee_minor, read_export, read_export_compact
from chalicelib.recon.matching import DayMatcher, compact_row
from chalicelib.recon.model import DiscrepancyKind
from chalicelib.storage.codec import from_item, to_item
from chalicelib.storage.recon_index import index_fields
from chalicelib.storage.records import attempt_key, refund_key

DAY = date(2024, 5, 19)


def attempt_item(attempt_id: str = "att_1", *, account: str = "wx-main", amount: int = 8888, status: str = "succeeded",
                 paid_at: str = "2024-05-19T02:03:04.123Z", transaction_id: str | None = "4200000001") -> dict[str, Any]:
    return {
        **attempt_key(attempt_id), "attempt_id": attempt_id, "payment_id": "pay_1", "merchant_id": "mch_1",
        "channel": "wechatpay", "account_id": account, "method": "wechat_jsapi", "amount": amount, "currency": "CNY",
        "status": status, "version": 3, "created_at": "2024-05-19T02:02:00.000Z", "updated_at": paid_at,
        "expires_at": "2024-05-19T04:02:00.000Z", "channel_transaction_id": transaction_id, "raw_status": "SUCCESS",
        **index_fields(account, "payment", attempt_id, parse_iso(paid_at)),
    }


def refund_item(refund_id: str = "re_1", *, status: str = "processing") -> dict[str, Any]:
    return {
        **refund_key(refund_id), "refund_id": refund_id, "payment_id": "pay_1", "attempt_id": "att_1",
        "merchant_id": "mch_1", "channel": "wechatpay", "account_id": "wx-main", "amount": 100, "currency": "CNY",
        "status": status, "version": 2, "created_at": "2024-05-19T03:00:00.000Z",
        "updated_at": "2024-05-19T03:00:01.000Z", "merchant_refund_no": "r-1", "automatic": False,
        "channel_refund_id": "5000000001", **index_fields("wx-main", "refund", refund_id, parse_iso("2024-05-19T03:00:00.000Z")),
    }


def export_lines(*items: dict[str, Any], wrapped: bool = True) -> bytes:
    lines = [json.dumps({"Item": to_item(item)} if wrapped else to_item(item)) for item in items]
    return ("\n".join(lines) + "\n").encode()


ITEMS = (attempt_item(), refund_item(), {"pk": "PAY#pay_1", "sk": "PAYMENT", "amount": 8888, "status": "succeeded"},
         attempt_item("att_2", status="succeeded", transaction_id=None))


def test_reads_what_the_day_index_query_reads() -> None:
    records = list(read_export(io.BytesIO(export_lines(*ITEMS)), fee_rate_bps=60))
    plain = [from_item(to_item(item)) for item in ITEMS if "recon_sk" in item]
    assert records == [record_from_item(item, 60) for item in plain]
    assert records[0].expected_fee == Money(53, "CNY") and records[1].expected_fee is None
    assert records[1].attempt_id == "att_1" and records[1].status == "processing" and records[2].channel_ref is None
    assert records[0].occurred_at.isoformat() == "2024-05-19T02:03:04.123000+00:00"


@pytest.mark.parametrize("line", ['{"Item": {"a": {"S": "x"}}}', ' {"a": 1}', '{"a": 1} ', '\ufeff{"a": 1}', '{"a": 1}{}',
                                  '{"a": 1', "", "[1, 2]", '"x"', "1e400", '{"a": NaN}'])
def test_lines_decode_as_json_loads_decodes_them(line: str) -> None:
    def outcome(decode: Any) -> Any:
        try:
            return decode(line)
        except ValueError as exc:
            return type(exc), str(exc)

    assert repr(outcome(hub_records._json)) == repr(outcome(json.loads))


def test_index_items_and_export_lines_give_the_same_tuples() -> None:
    from_export = list(read_export_compact(io.BytesIO(export_lines(*ITEMS)), fee_rate_bps=60))
    from_index = [record_tuple_from_item(from_item(to_item(item)), 60) for item in ITEMS if "recon_sk" in item]
    assert [(*found[:6], parse_iso(str(found[6])), *found[7:]) for found in from_export] == from_index
    assert from_index[0][8:] == (53, "CNY") and from_index[1][7:] == ("att_1", None, None)
    with pytest.raises(ValueError, match="unsupported currency 'XXX'"):
        record_tuple_from_item({**from_item(to_item(ITEMS[0])), "currency": "XXX"})


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1 << 20])
def test_chunk_boundaries_gzip_members_and_unwrapped_items(size: int) -> None:
    expected = list(read_export([export_lines(*ITEMS)]))
    data = gzip.compress(export_lines(*ITEMS[:2]), mtime=0) + gzip.compress(export_lines(*ITEMS[2:]), mtime=0)
    assert list(read_export([data[i : i + size] for i in range(0, len(data), size)])) == expected
    assert list(read_export(io.BytesIO(data))) == expected
    assert list(read_export(io.BytesIO(export_lines(*ITEMS, wrapped=False)))) == expected
    assert list(read_export([b"", export_lines(*ITEMS).rstrip(b"\n")])) == expected


def test_incremental_export_new_images_and_deletions() -> None:
    keys = to_item(attempt_key("att_1"))
    lines = [{"Metadata": {"WriteTimestampMicros": {"N": "1716084184123000"}}, "Keys": keys,
              "NewImage": to_item(attempt_item()), "OldImage": to_item(attempt_item(status="processing"))},
             {"Metadata": {"WriteTimestampMicros": {"N": "1716084185000000"}}, "Keys": to_item(refund_key("re_1")),
              "OldImage": to_item(refund_item())}]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    assert list(read_export([data])) == list(read_export([export_lines(attempt_item())]))


def test_filters_account_and_day() -> None:
    data = export_lines(attempt_item("att_1"), attempt_item("att_2", account="other"),
                        attempt_item("att_3", paid_at="2024-05-19T17:00:00.000Z"))  # 01:00 on the 20th in Beijing
    ids = [r.object_id for r in read_export([data], account_id="wx-main", day=DAY)]
    assert ids == ["att_1"]
    assert [r.object_id for r in read_export([data], account_id="wx-main")] == ["att_1", "att_3"]
    assert [r.object_id for r in read_export([data], day=date(2024, 5, 20))] == ["att_3"]


@pytest.mark.parametrize(("line", "reason"), [
    (b"{not json", "line 2: not JSON"),
    (json.dumps({"Item": {**to_item(attempt_item()), "amount": {"N": "88.88"}}}).encode(), "line 2: invalid literal"),
    (json.dumps({"Item": {k: v for k, v in to_item(attempt_item()).items() if k != "currency"}}).encode(),
     "line 2: missing attribute 'currency'"),
    (json.dumps({"Item": {**to_item(attempt_item()), "recon_sk": {"S": "charge#x"}}}).encode(), "neither payment"),
    (json.dumps({"Item": {**to_item(attempt_item()), "recon_sk": {"S": "payment#"}}}).encode(), "no object id"),
    (json.dumps({"Item": {**to_item(attempt_item()), "recon_at": {"S": "2024-05-19T02:03:04"}}}).encode(), "no offset"),
    (json.dumps({"Item": {**to_item(attempt_item()), "channel_transaction_id": {"N": "1"}}}).encode(), "line 2"),
])
def test_malformed_lines_are_named(line: bytes, reason: str) -> None:
    data = export_lines(attempt_item("att_0")) + line + b"\n"
    with pytest.raises(ExportMalformed, match=reason):
        list(read_export([data]))


def test_broken_or_truncated_gzip() -> None:
    whole = gzip.compress(export_lines(*ITEMS))
    with pytest.raises(ExportMalformed, match="ends in the middle"):
        list(read_export([whole[:-12]]))
    with pytest.raises(ExportMalformed, match="broken gzip"):
        list(read_export([whole[:10] + b"\x00" * 40 + whole[50:]]))


def test_bad_fee_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="fee_rate_bps"):
        list(read_export_compact([b""], fee_rate_bps=10_001))


@given(amount=st.integers(-10**12, 10**12), rate=st.integers(0, 10_000))
def test_expected_fee_is_the_day_index_fee(amount: int, rate: int) -> None:
    assert Money(expected_fee_minor(amount, rate), "CNY") == expected_fee(Money(amount, "CNY"), rate)
    assert expected_fee_minor(amount, rate) == int((Decimal(amount) * rate / 10_000).to_integral_value("ROUND_HALF_UP"))


def test_compact_records_feed_the_matcher() -> None:
    data = gzip.compress(export_lines(*ITEMS))
    paid = list(read_export([data], fee_rate_bps=60))[0]
    row = StatementRow(kind=StatementKind.PAYMENT, object_id="att_1", channel_ref="4200000001",
                       amount=Money(8888, "CNY"), status="succeeded", occurred_at=paid.occurred_at,
                       fee=Money(53, "CNY"), line=2)
    matcher = DayMatcher(DAY)
    assert matcher.add_record_tuples(read_export_compact(io.BytesIO(data), fee_rate_bps=60)) == 3
    assert list(matcher.match_row_tuples([compact_row(row)])) == []
    leftovers = list(matcher.finish())  # att_2 succeeded with no row; the processing refund is no difference
    assert [(d.kind, d.object_id) for d in leftovers] == [(DiscrepancyKind.HUB_ONLY, "att_2")]
    assert matcher.matched == 1 and matcher.matched_amount == {"CNY": 8888}
