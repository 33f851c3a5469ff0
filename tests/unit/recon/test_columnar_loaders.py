"""DuckDB's readers give the Python readers' values: the hub export (``load_export`` = ``read_export_compact``)
and the WeChat trade bill (``load_trade_bill`` = ``parse_trade_bill_rows``); anything irregular is left to the
Python reader, which reads it or names the line."""

from __future__ import annotations

import gzip
import json
import os
from datetime import date
from pathlib import Path

import pytest

from chalicelib.channels.base import StatementSummary
from chalicelib.channels.wechatpay import bill, bill_columnar
from chalicelib.domain.errors import ChannelError
from chalicelib.recon import columnar, hub_records

DAY = date(2024, 5, 19)


def _item(kind: str, object_id: str, *, pk: str = "wx#2024-05-19", amount: str = "8888", at: str = "2024-05-19T04:00:00.000Z",
          **extra: object) -> dict[str, object]:
    item: dict[str, object] = {"recon_pk": {"S": pk}, "recon_sk": {"S": f"{kind}#{object_id}"}, "amount": {"N": amount},
                               "currency": {"S": "CNY"}, "status": {"S": "succeeded"}, "recon_at": {"S": at}}
    item.update(extra)
    return item


def _export(tmp_path: Path, lines: list[object], name: str = "part.json.gz") -> str:
    path = tmp_path / name
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines) + "\n")
    return str(path)


def _both(paths: list[str], **options: object) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The records DuckDB's reader loaded and the Python reader's, each sorted: DuckDB's read does not keep the
    files' order (the workspace does not ask it to); what it reads again in order is checked to be the Python
    reader's list itself."""
    with columnar.Workspace() as space:
        count = hub_records.load_export(space, paths, **options)  # type: ignore[arg-type]
        got = list(space.fetch_records())
        again = list(space.in_order["records"]()) if "records" in space.in_order else None
    assert count == len(got)
    expected = []
    for path in paths:
        with open(path, "rb") as stream:
            expected += list(hub_records.read_export_compact(stream, **options))  # type: ignore[arg-type]
    assert again is None or again == expected
    return sorted(got, key=repr), sorted(expected, key=repr)


def test_export_read_by_duckdb_gives_the_python_readers_records(tmp_path: Path) -> None:
    lines = [
        {"Item": _item("payment", "att_1", channel_transaction_id={"S": "42"}, attempt_id={"S": "ignored"})},
        {"Item": {"pk": {"S": "PAY#1"}, "amount": {"N": "1"}}},  # not recon-indexed
        {"NewImage": _item("refund", "re_1", amount="-5", at="2024-05-19T23:50:00+08:00",
                           channel_refund_id={"NULL": True}, attempt_id={"S": "att_1"})},
        {"Keys": {"pk": {"S": "RE#2"}}},  # a deletion in an incremental export
        {"Item": _item("payment", "att_2", pk="other#2024-05-19", channel_transaction_id={"S": "43"})},
        {"Item": _item("payment", "att_3", pk="wx#2024-05-18")},
        {"Item": _item("payment", "att_#4", pk="a#b#2024-05-19", amount="12345")},
    ]
    path = _export(tmp_path, lines)
    # Given both the account and the day, the partition is one equality on recon_pk: it must still cut the key at
    # its last '#' as the Python reader does ("a#b" is an account, "a" is not).
    for options in ({}, {"account_id": "wx", "day": DAY, "fee_rate_bps": 60}, {"day": DAY, "fee_rate_bps": 0},
                    {"account_id": "a#b"}, {"account_id": "a#b", "day": DAY}, {"account_id": "a", "day": DAY},
                    {"account_id": "b", "day": DAY}):
        got, expected = _both([path], **options)
        assert got == expected and (got or options.get("account_id") in ("a", "b"))


def test_a_readers_relation_is_a_file_in_the_workspace_not_a_table(tmp_path: Path) -> None:
    """What a reader loads waits in a Parquet file of the workspace's directory (no DuckDB memory held); dropping it,
    or releasing the day, removes the file. A directory whose name holds a quote is no trouble."""
    export = _export(tmp_path, [{"Item": _item("payment", f"att_{n}")} for n in range(20)])
    statement = _bill(tmp_path, DETAIL)
    odd = tmp_path / "it's here"
    odd.mkdir()
    with columnar.Workspace(directory=str(odd)) as space:
        assert hub_records.load_export(space, [export]) == 20
        assert bill_columnar.load_trade_bill(space, statement) is not None
        tables = {name for (name,) in space.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert not {"export_lines", "bill_rows"} & tables
        stored = {name: space.path(f"{name}.parquet") for name in ("export_lines", "bill_rows")}
        assert all(os.path.getsize(path) > 0 for path in stored.values())
        assert space.count("records") == 20 and len(list(space.fetch_rows())) == len(DETAIL)
        space.drop_stored("export_lines")
        assert not os.path.exists(stored["export_lines"]) and os.path.exists(stored["bill_rows"])
        space.release()  # the day's relations dropped: the remaining file goes with them
        assert not os.path.exists(stored["bill_rows"]) and space.count("rows") == 0
    assert not odd.joinpath(os.path.basename(space.directory)).exists()  # the workspace's directory went with it


def test_several_export_files_are_read_together_in_order(tmp_path: Path) -> None:
    first = _export(tmp_path, [{"Item": _item("payment", f"att_{n}")} for n in range(50)], "a.json.gz")
    second = _export(tmp_path, [{"Item": _item("refund", f"re_{n}")} for n in range(50)], "b.json.gz")
    got, expected = _both([first, second], fee_rate_bps=60)
    assert got == expected and len(got) == 100


@pytest.mark.parametrize("odd", [
    {"Item": _item("payment", "att_9", amount="007")},  # int() reads it; SQL leaves it to int()
    {"Item": _item("payment", "att_9", at="2024-05-19T04:00:00.5+08:00")},
    _item("payment", "att_9"),  # a bare item, as the recon index's query pages hold them
])
def test_lines_sql_does_not_read_exactly_go_through_the_python_reader(tmp_path: Path, odd: dict[str, object]) -> None:
    got, expected = _both([_export(tmp_path, [{"Item": _item("payment", "att_1")}, odd])])
    assert got == expected and len(got) == 2


@pytest.mark.parametrize("broken", [
    '{"Item": {"recon_sk": {"S": "payment#att_9"}',  # broken JSON
    json.dumps({"Item": _item("payment", "att_9", amount="x")}),
    json.dumps({"Item": _item("payment", "att_9", at="2024-05-19T04:00:00")}),  # no offset
    json.dumps({"Item": _item("charge", "att_9")}),
    json.dumps({"Item": _item("payment", "att_9", channel_transaction_id={"N": "1"})}),
])
def test_a_malformed_export_is_refused_naming_the_line(tmp_path: Path, broken: str) -> None:
    path = _export(tmp_path, [{"Item": _item("payment", "att_1")}, broken])
    with columnar.Workspace() as space, pytest.raises(hub_records.ExportMalformed, match="hub export line 2"):
        hub_records.load_export(space, [path])


# --- the WeChat trade bill ------------------------------------------------------------------------------------

HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
          "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率")
SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额"


def _bill_line(time: str, transaction: str, order: str, state: str, amount: str, refund_id: str = "0",
               refund_no: str = "0", refund_amount: str = "0.00", refund_state: str = "", fee: str = "0.53000",
               name: str = "会员, 月卡", currency: str = "CNY") -> str:
    cells = [time, "wxd678efh567hg6787", "1900000109", "0", "", transaction, order, "oUpF8u", "JSAPI", state, "OTHERS",
             currency, amount, "0.00", refund_id, refund_no, refund_amount, "0.00", "ORIGINAL", refund_state, name, "",
             fee, "0.60%"]
    return ",".join("`" + cell for cell in cells)


def _bill(tmp_path: Path, detail: list[str], *, gz: bool = True, newline: str = "\r\n", blank: bool = False) -> str:
    count = len(detail)
    lines = [HEADER, *detail[:1], *([""] if blank else []), *detail[1:], SUMMARY,
             f"`{count},`100.00,`1.00,`0.00,`0.53000"]
    data = ("\ufeff" + newline.join(lines) + newline).encode()
    path = tmp_path / ("bill.csv.gz" if gz else "bill.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


DETAIL = [
    _bill_line("2024-05-19 00:10:00", "4200001", "att_1", "SUCCESS", "88.88"),
    _bill_line("2024-05-19 00:10:00", "4200002", "att_2", "REVOKED", "1.00", fee="-0.00500"),
    _bill_line("2024-05-19 09:00:01", "4200001", "att_1", "REFUND", "0.00", refund_id="5030001", refund_no="re_1",
               refund_amount="10.00", refund_state="SUCCESS", fee="-0.06000"),
    _bill_line("2024-05-19 09:00:02", "", "att_3", "REFUND", "0.00", refund_id="0", refund_no="re_2",
               refund_amount="1.50", refund_state="PROCESSING", fee=""),
    _bill_line("2024-05-19 23:59:59", "4200004", "", "SUCCESS", "0.01", fee="0.01", currency=""),
    _bill_line("2024-05-19 12:00:00", "4200005", "att_5", "SUCCESS", "5.00", currency="HKD", fee="0.03"),
]


def _python(path: str) -> tuple[list[tuple[object, ...]], StatementSummary]:
    with open(path, "rb") as stream:
        parsed = list(bill.parse_trade_bill_rows([stream.read()]))
    rows = [item[:8] + (item[8].isoformat(),) + item[9:] for item in parsed if not isinstance(item, StatementSummary)]
    (summary,) = [item for item in parsed if isinstance(item, StatementSummary)]
    return rows, summary


@pytest.mark.parametrize(("gz", "newline", "blank"), [(True, "\r\n", False), (False, "\n", True)])
def test_bill_read_by_duckdb_gives_the_python_parsers_rows(tmp_path: Path, gz: bool, newline: str, blank: bool) -> None:
    path = _bill(tmp_path, DETAIL, gz=gz, newline=newline, blank=blank)
    with columnar.Workspace() as space:
        summary = bill_columnar.load_trade_bill(space, path)
        got = list(space.fetch_rows())
    rows, expected_summary = _python(path)
    assert summary == expected_summary and got == rows and len(got) == len(DETAIL)


@pytest.mark.parametrize("odd", [
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "SUCCESS", "88.8"),  # one decimal: minor_units reads it
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "SUCCESS", "88.88") + ",`",  # a trailing empty cell
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "SUCCESS", "88.88", currency="JPY"),
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "REFUND", "0.00", refund_no="0"),  # malformed
    _bill_line("2024-05-19 24:10:00", "4200009", "att_9", "SUCCESS", "88.88"),  # malformed
])
def test_an_irregular_bill_is_left_to_the_python_parser(tmp_path: Path, odd: str) -> None:
    path = _bill(tmp_path, [*DETAIL, odd])
    with columnar.Workspace() as space:
        assert bill_columnar.load_trade_bill(space, path) is None
        assert space.count("rows") == 0


@pytest.mark.parametrize("odd", [
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "SUCCESS", "88.88", name="a\rb"),  # a CR inside a line
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "SUCCESS", "88.88").rsplit(",`", 1)[0],  # a cell short
    # a cell too many, one that is not empty (the parser refuses the line): "\x02" was DuckDB's NULL text here
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "SUCCESS", "88.88") + ",`\x02",
    _bill_line("2024-05-19 00:10:00", "4200009", "att_9", "SUCCESS", "88.88") + ",`x",
])
def test_lines_the_cell_reader_cannot_vouch_for_are_left_to_the_parser(tmp_path: Path, odd: str) -> None:
    path = _bill(tmp_path, [*DETAIL, odd])
    with columnar.Workspace() as space:
        assert bill_columnar.load_trade_bill(space, path) is None
        assert space.count("rows") == 0


@pytest.mark.parametrize("cell", ["\x02", "\\N", "NULL", ""])
def test_a_cell_that_looks_like_a_null_is_read_as_text(tmp_path: Path, cell: str) -> None:
    """Only a missing cell is NULL to the cell reader: a cell holding any text (even DuckDB's default NULL
    spellings) is that text, as the parser reads it."""
    path = _bill(tmp_path, [*DETAIL, _bill_line("2024-05-19 00:10:00", cell, "att_9", "SUCCESS", "88.88", name=cell)])
    with columnar.Workspace() as space:
        summary = bill_columnar.load_trade_bill(space, path)
        got = list(space.fetch_rows())
    rows, expected_summary = _python(path)
    assert summary == expected_summary and got == rows and len(got) == len(DETAIL) + 1


def test_the_bill_is_held_narrow_and_its_text_read_back_exactly(tmp_path: Path) -> None:
    """The rows keep the time as a TIMESTAMP and the kind as a flag; the view gives the parser's text back."""
    path = _bill(tmp_path, DETAIL, blank=True)
    with columnar.Workspace() as space:
        assert bill_columnar.load_trade_bill(space, path) is not None
        types = dict(space.con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                       "WHERE table_name = 'bill_rows'").fetchall())
        got = list(space.fetch_rows())
    assert types["moment"] == "TIMESTAMP" and types["refund"] == "BOOLEAN" and "occurred_at" not in types
    assert got == _python(path)[0]


# --- what a reader vouches for: the engine's own checks, done in the reader's pass --------------------------


def _matched_both_ways(space: columnar.Workspace) -> None:
    """The workspace's match equals the Python engine's on the same tuples."""
    from chalicelib.recon.matching import match_day_compact

    expected = match_day_compact(DAY, list(space.fetch_rows()), list(space.fetch_records()))
    assert space.match(DAY) == expected


def test_a_bill_whose_rows_all_have_an_object_id_is_vouched_for(tmp_path: Path) -> None:
    keyed = [line for line in DETAIL if "4200004" not in line]
    with columnar.Workspace() as space:
        assert bill_columnar.load_trade_bill(space, _bill(tmp_path, keyed)) is not None
        assert space.vetted == {"rows"}
        _matched_both_ways(space)


def test_a_payment_without_its_order_number_leaves_the_rows_to_the_engines_check(tmp_path: Path) -> None:
    with columnar.Workspace() as space:
        assert bill_columnar.load_trade_bill(space, _bill(tmp_path, DETAIL)) is not None
        assert "rows" not in space.vetted
        assert not space._acceptable([])  # the row pairs by channel_ref: the whole day goes to the Python engine
        _matched_both_ways(space)


def test_a_regular_export_is_vouched_for_and_release_forgets_it(tmp_path: Path) -> None:
    path = _export(tmp_path, [{"Item": _item("payment", f"att_{n}", channel_transaction_id={"S": f"42{n}"})}
                              for n in range(5)])
    with columnar.Workspace() as space:
        assert hub_records.load_export(space, [path], fee_rate_bps=60) == 5
        assert space.vetted == {"records"}
        _matched_both_ways(space)
        space.release()
        assert space.vetted == set()


@pytest.mark.parametrize("odd", [
    _item("payment", "att_9", currency={"S": "XYZ"}),  # a currency the engine does not support
    _item("payment", "att_9", channel_transaction_id={"S": "4\x1f2"}),  # the Python index's separator
    _item("refund", "re_9", attempt_id={"S": "att\x1f1"}),
])
def test_an_export_the_engine_would_refuse_is_not_vouched_for(tmp_path: Path, odd: dict[str, object]) -> None:
    path = _export(tmp_path, [{"Item": _item("payment", "att_1")}, {"Item": odd}])
    with columnar.Workspace() as space:
        assert hub_records.load_export(space, [path]) == 2
        assert "records" not in space.vetted
        assert not space._acceptable([])


def test_staging_a_bill_does_not_touch_duckdb(tmp_path: Path) -> None:
    """The file work runs beside the export's DuckDB reader: it must not use the connection."""
    path = _bill(tmp_path, DETAIL)
    with columnar.Workspace() as space:

        class NoDuckDB:
            path = space.path

            @property
            def con(self) -> object:
                raise AssertionError("the staging step used DuckDB")

        finish = bill_columnar.stage_trade_bill(NoDuckDB(), path)
        assert os.path.exists(space.path("bill-cells.csv"))
        # the finishing step, on the real workspace (same directory), loads the rows
        summary = bill_columnar.stage_trade_bill(space, path)()
        assert summary == _python(path)[1] and list(space.fetch_rows()) == _python(path)[0]
        assert not os.path.exists(space.path("bill-cells.csv"))
        del finish


# --- the run's columnar path (run.load_day: the bill staged beside the export's reader) -----------------------


def _wx_account() -> object:
    from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets

    config = ChannelAccountConfig(account_id="wx", channel="wechatpay", methods=("wechat.jsapi",),
                                  api_base_url="https://api.test.invalid", settings={"fee_rate_bps": "60"})
    return ChannelAccount(config, ChannelSecrets({}))


def _run_day(tmp_path: Path, third_amount: str) -> tuple[str, str]:
    detail = [
        _bill_line("2024-05-19 10:00:00", "4200001", "att_1", "SUCCESS", "88.88", fee="0.53000"),  # matches
        _bill_line("2024-05-19 11:00:00", "4200002", "att_2", "SUCCESS", "11.11", fee="0.07000"),  # amount differs
        _bill_line("2024-05-19 12:00:00", "4200001", "att_1", "REFUND", "0.00", refund_id="503", refund_no="re_1",
                   refund_amount="1.00", refund_state="SUCCESS", fee="-0.01000"),  # matches
        _bill_line("2024-05-19 12:30:00", "4200003", "att_3", "SUCCESS", third_amount, fee="0.03000"),  # channel only
    ]
    lines = [HEADER, *detail, SUMMARY, "`4,`104.99,`1.00,`0.00,`0.62000"]
    bill_path = tmp_path / "bill.csv.gz"
    bill_path.write_bytes(gzip.compress(("\r\n".join(lines) + "\r\n").encode()))
    export = _export(tmp_path, [
        {"Item": _item("payment", "att_1", amount="8888", channel_transaction_id={"S": "4200001"})},
        {"Item": _item("payment", "att_2", amount="1000", channel_transaction_id={"S": "4200002"})},
        {"Item": _item("refund", "re_1", amount="100", channel_refund_id={"S": "503"}, attempt_id={"S": "att_1"})},
        {"Item": _item("payment", "att_9", amount="700", at="2024-05-19T06:00:00.000Z")},  # hub only
    ])
    return str(bill_path), export


@pytest.mark.parametrize("third_amount", ["5.00", "5.0"])  # "5.0": the cell reader declines, the parser reads it
def test_the_runs_columnar_path_gives_the_python_runs_result(tmp_path: Path, third_amount: str) -> None:
    from chalicelib.recon import run
    from chalicelib.recon.tally import Tally

    account = _wx_account()
    bill_path, export = _run_day(tmp_path, third_amount)
    columnar_tally, python_tally = Tally(), Tally()
    got = run.match_statement_columnar(account, DAY, bill_path, [export], tally=columnar_tally)  # type: ignore[arg-type]
    with open(export, "rb") as stream:
        records = list(hub_records.read_export_compact(stream, account_id="wx", day=DAY, fee_rate_bps=60))
    with open(bill_path, "rb") as stream:
        expected = run.match_statement(account, DAY, [stream.read()], records, tally=python_tally)  # type: ignore[arg-type]
    assert got == expected
    assert got.matched == 2 and len(got.discrepancies) == 3
    assert columnar_tally.rows == 4 and columnar_tally == python_tally  # every count and total, the summary too


def test_a_malformed_export_fails_the_columnar_run_while_the_bill_is_staged(tmp_path: Path) -> None:
    from chalicelib.recon import run
    from chalicelib.recon.tally import Tally

    bill_path, _ = _run_day(tmp_path, "5.00")
    broken = _export(tmp_path, [{"Item": _item("payment", "att_1")}, '{"Item": {'], "broken.json.gz")
    with pytest.raises(hub_records.ExportMalformed, match="hub export line 2"):
        run.match_statement_columnar(_wx_account(), DAY, bill_path, [broken], tally=Tally())  # type: ignore[arg-type]


@pytest.mark.parametrize(("tail", "plain"), [(b"\r\n", True), (b"\n", True), (b"x\r\n", True), (b"\r\r\n", False),
                                            (b"\rx\n", False)])
def test_cells_copy_refuses_a_lone_carriage_return_wherever_the_read_cuts(tmp_path: Path, tail: bytes,
                                                                          plain: bool) -> None:
    # CRLF lines filling the first read exactly, then a line ending in ``tail``: whether a "\r" not followed by
    # "\n" is found must not depend on where a chunk or a block ends.
    line = b"`2024-05-19 10:00:00,`x\r\n"
    head = b"a,b\r\n"
    body = line * ((bill_columnar._READ - len(head)) // len(line))
    data = head + body + b"`" * (bill_columnar._READ - len(head) - len(body)) + b"y" + tail + line
    source = tmp_path / "bill.csv"
    source.write_bytes(data)
    copied = bill_columnar.cells_copy(str(source), str(tmp_path / "cells.csv"))
    assert (copied is not None) is plain
    assert (bill_columnar._LONE_CR(data) is None) is plain
    if copied is not None:
        assert copied.lines == data.count(b"\n")


@pytest.mark.parametrize("loaded_before", [False, True])  # True: records not empty, the Python reader appends
def test_the_export_reader_says_when_it_starts_reading_after_its_checks(tmp_path: Path, loaded_before: bool) -> None:
    path = _export(tmp_path, [{"Item": _item("payment", "att_1")}])
    events: list[str] = []
    with columnar.Workspace() as space:
        if loaded_before:
            with open(path, "rb") as stream:
                space.add_record_tuples(list(hub_records.read_export_compact(stream)))
        real = space.replaceable

        def replaceable(name: str) -> bool:
            events.append("checked")
            return real(name)

        space.replaceable = replaceable  # type: ignore[method-assign]
        assert hub_records.load_export(space, [path], reading=lambda: events.append("reading")) == 1
        assert space.count("records") == (2 if loaded_before else 1)
    assert events == ["checked", "reading"]


@pytest.mark.parametrize("hub", ["export", "tuples", None])
def test_the_bill_is_staged_once_the_hub_side_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    hub: str | None) -> None:
    """The bill's file work (GIL-holding Python) starts when the export's reader has made its quick DuckDB
    checks, not before them; with index tuples or no hub side it still runs."""
    from chalicelib.recon import run
    from chalicelib.recon.tally import Tally

    bill_path, export = _run_day(tmp_path, "5.00")
    events: list[str] = []
    real_stage = bill_columnar.stage_trade_bill
    real_replaceable = columnar.Workspace.replaceable

    def stage(space: object, path: str) -> object:
        events.append("staged")
        return real_stage(space, path)

    def replaceable(self: columnar.Workspace, name: str) -> bool:
        events.append(f"checked {name}")
        return real_replaceable(self, name)

    monkeypatch.setattr(bill_columnar, "stage_trade_bill", stage)
    monkeypatch.setattr(columnar.Workspace, "replaceable", replaceable)
    with open(export, "rb") as stream:
        tuples = list(hub_records.read_export_compact(stream, account_id="wx", day=DAY, fee_rate_bps=60))
    side = {"export": [export], "tuples": tuples, None: None}[hub]
    with columnar.Workspace() as space:
        run.load_day(_wx_account(), DAY, bill_path, side, tally=Tally(), space=space)  # type: ignore[arg-type]
        assert space.count("rows") == 4 and space.count("records") == (0 if hub is None else 4)
    assert events[:2] == (["checked records", "staged"] if hub == "export" else ["staged", "checked rows"])


def test_where_the_records_order_decides_the_export_is_read_again_in_order(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A row without an object_id pairs by channel_ref with the first record in order: the day goes to the
    Python engine with the records in the files' order, whatever order DuckDB's read gave them."""
    from chalicelib.recon.matching import match_day_compact

    first = _export(tmp_path, [{"Item": _item("payment", "att_1", amount="100", channel_transaction_id={"S": "42"})}],
                    "a.json.gz")
    second = _export(tmp_path, [{"Item": _item("payment", "att_2", amount="200", channel_transaction_id={"S": "42"})}],
                     "b.json.gz")
    row = ("payment", "", "42", 200, "CNY", "succeeded", None, None, "2024-05-19T12:00:00+08:00", None, 1)
    with columnar.Workspace() as space:
        assert hub_records.load_export(space, [first, second]) == 2
        in_duckdb = list(space.fetch_records())
        monkeypatch.setattr(space, "fetch_records", lambda: iter(in_duckdb[::-1]))  # as a parallel read may give them
        space.add_row_tuples([row])
        got = space.match(DAY)
    records = [*_both([first])[1], *_both([second])[1]]
    assert got == match_day_compact(DAY, [row], records)
    assert got != match_day_compact(DAY, [row], records[::-1])  # the order does decide this day


def test_a_bill_in_several_gzip_members_or_cut_short_is_read_as_the_parser_reads_it(tmp_path: Path) -> None:
    """The bill is inflated by ISA-L, not zlib: members written one after the other by Python's own gzip module
    read as one file, and a stream cut short is left to the parser, which names it."""
    whole = Path(_bill(tmp_path, DETAIL, gz=False)).read_bytes()
    middle = len(whole) // 2
    members = tmp_path / "members.csv.gz"
    members.write_bytes(gzip.compress(whole[:middle]) + gzip.compress(whole[middle:]))
    with columnar.Workspace() as space:
        summary = bill_columnar.load_trade_bill(space, str(members))
        got = list(space.fetch_rows())
    rows, expected_summary = _python(str(members))
    assert summary == expected_summary and got == rows and len(got) == len(DETAIL)

    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(whole)[:-20])
    with columnar.Workspace() as space:
        assert bill_columnar.load_trade_bill(space, str(cut)) is None
        assert space.count("rows") == 0
    with open(cut, "rb") as stream, pytest.raises(ChannelError, match="trade bill"):
        list(bill.parse_trade_bill_rows([stream.read()]))
