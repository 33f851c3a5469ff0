"""What a run feeds the engine: the statement as tuples (the adapter's own tuple rows or its converted
``StatementRow`` values), tallied, matched and checked in one pass, with the same result as the dataclass API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from chalicelib.channels.base import StatementRow, StatementSummary
from chalicelib.channels.registry import adapter
from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets
from chalicelib.domain.errors import ChannelError
from chalicelib.recon.day_records import record_from_item, record_tuple_from_item
from chalicelib.recon.matching import compact_row, match_day
from chalicelib.recon.model import DiscrepancyKind
from chalicelib.recon.run import match_statement, statement_tuples
from chalicelib.recon.tally import StatementInvalid, Tally

DAY = date(2024, 5, 19)
BEIJING = timezone(timedelta(hours=8))
HEADER = "交易时间,微信订单号,商户订单号,交易状态,货币种类,应结订单金额,微信退款单号,商户退款单号,退款金额,退款状态,手续费"
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,手续费总金额"


def _account() -> ChannelAccount:
    config = ChannelAccountConfig(account_id="wx-main", channel="wechatpay", methods=("wechat.jsapi",),
                                  api_base_url="https://api.test.invalid", settings={"fee_rate_bps": "60"})
    return ChannelAccount(config, ChannelSecrets({}))


def _bill(summary_payments: str = "99.99") -> bytes:
    rows = ["`2024-05-19 10:00:00,`4200001,`att_1,`SUCCESS,`CNY,`88.88,`0,`0,`0.00,`,`0.53000",  # matches
            "`2024-05-19 11:00:00,`4200002,`att_2,`SUCCESS,`CNY,`11.11,`0,`0,`0.00,`,`0.07000",  # amount differs
            "`2024-05-19 12:00:00,`4200001,`att_1,`REFUND,`CNY,`0.00,`503,`re_1,`1.00,`SUCCESS,`-0.01000",  # matches
            "`2024-05-19 12:00:00,`4200001,`att_1,`REFUND,`CNY,`0.00,`503,`re_1,`1.00,`SUCCESS,`-0.01000"]  # repeat
    lines = [HEADER, *rows, SUMMARY_HEADER, f"`4,`{summary_payments},`2.00,`0.58000"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _items() -> list[dict[str, object]]:
    def item(kind: str, object_id: str, amount: int, ref: str, hour: int) -> dict[str, object]:
        at = datetime(2024, 5, 19, hour, tzinfo=BEIJING).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ref_name = "channel_transaction_id" if kind == "payment" else "channel_refund_id"
        return {"recon_sk": f"{kind}#{object_id}", "amount": amount, "currency": "CNY", "status": "succeeded",
                "recon_at": at, ref_name: ref, "attempt_id": "att_1"}

    return [item("payment", "att_1", 8888, "4200001", 10), item("payment", "att_2", 1112, "4200002", 11),
            item("refund", "re_1", 100, "503", 12), item("payment", "att_3", 500, "4200003", 13)]


class _RowsOnly:
    """An adapter that offers only ``parse_statement`` (no tuple rows)."""

    def parse_statement(self, account: ChannelAccount, chunks: Iterable[bytes]) -> Iterator[StatementRow | StatementSummary]:
        return adapter("wechatpay").parse_statement(account, chunks)


def test_the_statement_reaches_the_engine_as_the_same_tuples_with_or_without_tuple_rows() -> None:
    wechat = adapter("wechatpay")
    direct = list(statement_tuples(wechat, _account(), [_bill()]))
    converted = list(statement_tuples(_RowsOnly(), _account(), [_bill()]))  # type: ignore[arg-type]
    assert direct == converted
    assert [row if isinstance(row, StatementSummary) else compact_row(row)
            for row in wechat.parse_statement(_account(), [_bill()])] == direct
    assert [type(row).__name__ for row in direct] == ["tuple"] * 4 + ["StatementSummary"]


def test_match_statement_gives_what_the_dataclass_api_gives() -> None:
    account, tally, plain = _account(), Tally(), Tally()
    result = match_statement(account, DAY, [_bill()], [record_tuple_from_item(item, 60) for item in _items()],
                             tally=tally)
    rows = plain.rows_of(adapter("wechatpay").parse_statement(account, [_bill()]))
    assert result == match_day(DAY, rows, [record_from_item(item, 60) for item in _items()])
    assert tally == plain and tally.rows == 4
    assert sorted((found.kind, found.object_id) for found in result.discrepancies) == [
        (DiscrepancyKind.AMOUNT, "att_2"), (DiscrepancyKind.DUPLICATE_ROW, "re_1"), (DiscrepancyKind.HUB_ONLY, "att_3")]
    assert result.matched == 2 and result.matched_amount == {"CNY": 8888 - 100}


def test_match_statement_refuses_a_statement_that_does_not_add_up_or_does_not_parse() -> None:
    records = [record_tuple_from_item(item, 60) for item in _items()]
    with pytest.raises(StatementInvalid, match="payments total 9998"):
        match_statement(_account(), DAY, [_bill("99.98")], records, tally=Tally())
    with pytest.raises(ChannelError, match="line 3"):
        match_statement(_account(), DAY, [_bill().replace(b"11.11", b"11.111")], records, tally=Tally())
