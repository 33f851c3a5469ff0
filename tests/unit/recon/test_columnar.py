"""The DuckDB engine gives ``match_day_compact``'s result: every matching case run through it, and random days
(duplicates, rows without ids, pool entries, fee and status differences) compared difference for difference."""

from __future__ import annotations

import functools
import gc
import inspect
import random
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

import pytest
import test_matching as cases  # the matching cases, from this directory (pytest puts it on sys.path)

from chalicelib.channels.base import StatementKind, StatementRow
from chalicelib.domain.money import Money
from chalicelib.recon import columnar
from chalicelib.recon.hub_records import hub_record
from chalicelib.recon.matching import (
    NEAR_MIDNIGHT,
    compact_record,
    compact_row,
    match_day,
    match_day_compact,
    statement_row,
)
from chalicelib.recon.model import DayResult, HubRecord, Pooled

DAY = cases.DAY


def columnar_match_day(day: date, rows: Iterable[StatementRow], records: Iterable[HubRecord],
                       pool: Iterable[Pooled] = (), *, near_midnight: timedelta = NEAR_MIDNIGHT) -> DayResult:
    return columnar.match_day_columnar(day, [compact_row(row) for row in rows],
                                       [compact_record(record) for record in records], pool,
                                       near_midnight=near_midnight)


def _on_duckdb(test: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cases, "match_day", columnar_match_day)
            return test(*args, **kwargs)
    return run


# Every test of test_matching.py that calls match_day, again with match_day answered by the DuckDB engine.
for _name, _test in list(vars(cases).items()):
    if _name.startswith("test_") and callable(_test) and "match_day(" in inspect.getsource(_test):
        globals()[f"{_name}_on_duckdb"] = _on_duckdb(_test)


def test_every_match_day_case_is_rerun_here() -> None:
    rerun = [name for name in globals() if name.endswith("_on_duckdb")]
    assert len(rerun) >= 25, rerun


# --- random days -------------------------------------------------------------------------------------------


def _day(seed: int, *, unkeyed: float = 0.1, same_line: float = 0.0,
         repeats: tuple[int, ...] = (1, 1, 1, 1, 2)) -> tuple[list[StatementRow], list[HubRecord], list[Pooled]]:
    """A random day. ``unkeyed``: the share of rows without an object_id (such a day goes whole to the Python
    engine); ``same_line``: the share of rows that carry the line number of the row before; ``repeats``: how many
    rows a key may have."""
    rng = random.Random(seed)
    rows: list[StatementRow] = []
    records: list[HubRecord] = []
    pool: list[Pooled] = []
    line = 0
    for index in range(rng.randint(20, 120)):
        kind = rng.choice([StatementKind.PAYMENT, StatementKind.REFUND])
        key, ref = f"{'att' if kind is StatementKind.PAYMENT else 're'}_{index % 90}", f"ch_{index % 70}"
        when = cases.at(rng.choice([0, 0, 12, 23]), rng.choice([0, 10, 45]))
        amount, fee = rng.randint(1, 5_000), rng.choice([None, None, 3, 4])
        shape = rng.random()
        if shape < 0.85:
            records.append(cases.record(key, kind=kind, amount=amount, ref=ref, fee=fee, when=when,
                                        status=rng.choice(["succeeded"] * 6 + ["failed", "processing"])))
        if shape > 0.1:
            for _ in range(rng.choice(repeats)):
                line += 0 if line and rng.random() < same_line else 1
                rows.append(cases.row("" if rng.random() < unkeyed else key, kind=kind, line=line,
                                      amount=amount + rng.choice([0] * 8 + [1, -1]),
                                      currency=rng.choice(["CNY"] * 15 + ["HKD"]),
                                      status=rng.choice(["succeeded"] * 8 + ["processing"]),
                                      fee=rng.choice([fee, fee, fee, None, 9]), ref=rng.choice([ref, ref, None]),
                                      when=when))
        if rng.random() < 0.05:
            since = DAY - timedelta(days=rng.randint(1, 3))
            if rng.random() < 0.5:
                pool.append(Pooled(since=since, record=cases.record(key, kind=kind, amount=amount, ref=ref,
                                                                    when=cases.at(23, 50, day=since))))
            else:
                pool.append(Pooled(since=since, row=cases.row(key if unkeyed == 0 or rng.random() < 0.7 else "", kind=kind,
                                                              amount=amount, ref=ref, line=rng.randint(1, 9),
                                                              when=cases.at(0, 5, day=since))))
    # the Python engine refuses two different records for one key, and two pooled records for one key
    seen: set[tuple[str, str]] = set()
    unique = []
    for candidate in records:
        if (str(candidate.kind), candidate.object_id) not in seen:
            seen.add((str(candidate.kind), candidate.object_id))
            unique.append(candidate)
    pooled: set[tuple[str, str]] = set()
    kept = []
    for item in pool:
        if item.record is not None:
            if (str(item.record.kind), item.record.object_id) in pooled:
                continue
            pooled.add((str(item.record.kind), item.record.object_id))
        kept.append(item)
    pool = kept
    rng.shuffle(unique)
    return rows, unique, pool


@pytest.mark.parametrize("seed", range(60))
def test_random_days_give_the_python_engines_result(seed: int) -> None:
    rows, records, pool = _day(seed)
    expected = match_day(DAY, rows, records, pool)
    assert expected.discrepancies or expected.carried, "a day with nothing to find proves little"
    got = columnar_match_day(DAY, rows, records, pool)
    assert got == expected


@pytest.mark.parametrize("seed", range(60))
def test_random_days_with_every_row_keyed_are_decided_in_sql_as_the_python_engine_decides(seed: int) -> None:
    """The days above mostly hold a row without an object_id, which sends the whole day to the Python engine.
    These do not: repeated rows (some sharing a line number), pairs, rows and records alone near midnight and
    not, pooled items, all through the SQL path, difference for difference and in the same order."""
    rows, records, pool = _day(seed, unkeyed=0.0, same_line=0.3, repeats=(1, 1, 1, 2, 3))
    expected = match_day(DAY, rows, records, pool)
    assert any(found.kind == "duplicate_row" for found in expected.discrepancies)
    with columnar.Workspace() as space:
        space.add_record_tuples(compact_record(record) for record in records)
        space.add_row_tuples(compact_row(row) for row in rows)
        got = space.match(DAY, pool)
        assert space.stats["python_values"] > 0  # the SQL path decided the day (the fallback sets no stats)
    assert got == expected


def test_repeats_that_share_a_line_come_back_in_file_order() -> None:
    """Two keys, each a first row on line 1 and many repeats on line 2 (tuples from an adapter may repeat a line
    number): the repeats' order is the file's, as DayMatcher reports them, not whatever order a sort leaves ties."""
    rows = [cases.row(f"att_{key}", line=1, ref="wx") for key in range(2)]
    rows += [cases.row(f"att_{key}", line=2, ref="wx", amount=100 + n) for n in range(1, 120) for key in range(2)]
    assert columnar_match_day(DAY, rows, []) == match_day(DAY, rows, [])


def test_a_record_time_without_an_offset_is_refused_as_the_python_engine_refuses_it() -> None:
    row = compact_row(cases.row("att_1", amount=100))
    naive = (*compact_record(cases.record("att_1", amount=200))[:6], "2024-05-19T12:00:00", None, None, None)
    with pytest.raises(ValueError, match="naive time"):
        match_day_compact(DAY, [row], [naive])
    with pytest.raises(ValueError, match="naive time"):
        columnar.match_day_columnar(DAY, [row], [naive])


def test_only_differences_become_python_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [cases.row(f"att_{n}", ref=f"wx_{n}", line=n) for n in range(1, 501)]
    records = [cases.record(f"att_{n}", ref=f"wx_{n}") for n in range(1, 501)]
    rows[7] = cases.row("att_8", ref="wx_8", line=8, amount=1)  # one amount difference
    rows.append(cases.row("att_9", ref="wx_9", line=501))  # a repeat of line 9
    rows.append(cases.row("att_9", ref="wx_9", line=502))  # and another
    records.append(cases.record("att_20", ref="wx_20"))  # the same record twice: its key is residue
    built: list[str] = []
    real = columnar._row_of

    def counted(outcome: Any, money: Any) -> StatementRow:
        built.append(outcome[columnar._ROW_AT][1])  # the row's object_id
        return real(outcome, money)

    monkeypatch.setattr(columnar, "_row_of", counted)
    with columnar.Workspace() as space:
        space.add_record_tuples(compact_record(record) for record in records)
        space.add_row_tuples(compact_row(row) for row in rows)
        result = space.match(DAY)
        assert space.count("residue") == 1 and space.count("repeats") == 2
        assert space.stats == {"matched_in_sql": 498, "residue_keys": 1, "python_values": 3}
    assert result == match_day(DAY, rows, records)
    assert result.matched == 499
    assert [(str(found.kind), found.object_id, found.reasons[0].channel) for found in result.discrepancies] == [
        ("amount", "att_8", "0.01"), ("duplicate_row", "att_9", "line 9"), ("duplicate_row", "att_9", "line 9")]
    # The 497 agreeing pairs and att_9's first row stayed in SQL; the repeats became values with their first line;
    # the residue key went through DayMatcher (which built nothing: its pair agrees).
    assert built == ["att_8", "att_9", "att_9"]


def test_text_survives_the_spool_exactly() -> None:
    odd = cases.row("att_\"q\",\n`é", ref="", line=3, attempt_id="\\N")
    record = cases.record("att_\"q\",\n`é", ref="", attempt_id=None)
    assert columnar_match_day(DAY, [odd], [record]) == match_day(DAY, [odd], [record])
    with columnar.Workspace() as space:
        space.add_row_tuples([compact_row(odd)])
        (back,) = list(space.fetch_rows())
    assert back[:8] == compact_row(odd)[:8] and back[9:] == ("\\N", 3)


def test_input_the_python_engine_refuses_is_refused_the_same_way() -> None:
    bad = cases.record("att_1", ref="wx\x1f1")
    with pytest.raises(ValueError, match="separator"):
        columnar_match_day(DAY, [cases.row()], [bad])
    unsupported = compact_record(cases.record())[:4] + ("XXX",) + compact_record(cases.record())[5:]
    with pytest.raises(ValueError, match="unsupported value 'XXX'"):
        columnar.match_day_columnar(DAY, [compact_row(cases.row())], [unsupported])
    twice = [cases.record(), cases.record(amount=1)]
    with pytest.raises(ValueError, match="two different hub records"):
        columnar_match_day(DAY, [cases.row()], twice)
    assert columnar_match_day(DAY, [cases.row()], [cases.record(), cases.record()]) == match_day(
        DAY, [cases.row()], [cases.record(), cases.record()])


def test_same_result_as_match_day_compact_on_tuples_with_money_objects() -> None:
    rows = [cases.row(amount=8888, fee=53), cases.row("re_1", kind=StatementKind.REFUND, ref="wr", line=2)]
    records = [cases.record(amount=8888, fee=53), cases.record("re_1", kind=StatementKind.REFUND, ref="wr")]
    compact_rows = [compact_row(row) for row in rows]
    compact_records = [compact_record(record) for record in records]
    assert columnar.match_day_columnar(DAY, compact_rows, compact_records) == match_day_compact(
        DAY, compact_rows, compact_records)


def test_differences_are_built_with_the_collector_paused_and_it_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [cases.row("att_1", ref="wx_1", line=1, amount=1), cases.row("att_2", ref="wx_2", line=2)]
    records = [cases.record("att_1", ref="wx_1")]
    seen: list[bool] = []
    real = columnar._row_of

    def watched(outcome: Any, money: Any) -> StatementRow:
        seen.append(gc.isenabled())
        return real(outcome, money)

    monkeypatch.setattr(columnar, "_row_of", watched)
    assert gc.isenabled()
    assert columnar_match_day(DAY, rows, records) == match_day(DAY, rows, records)
    assert seen == [False, False] and gc.isenabled()  # paused while building, enabled again after
    gc.disable()
    try:  # a caller that had it off keeps it off
        columnar_match_day(DAY, rows, records)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_the_paused_block_allocated_is_not_left_for_the_young_generation() -> None:
    """It joins the oldest generation at once: the young generation's next collection, which the first
    allocations after the block start, does not traverse it."""
    assert gc.isenabled()
    gc.collect()  # every generation's count back to zero: the next collection is the young generation's alone
    with columnar._collector_paused():
        kept = [[number] for number in range(50_000)]
    assert gc.isenabled()
    oldest = {id(thing) for thing in gc.get_objects(generation=2)}
    assert id(kept[0]) in oldest and id(kept[-1]) in oldest
    with pytest.raises(ValueError, match="unknown kind"):  # and an error on the way still gives it back
        with columnar._collector_paused():
            columnar._row_of((1, None, 0, None, "transfer", "x", None, 1, "CNY", "succeeded", None, None,
                              "2024-05-19T10:00:00+08:00", None, 7))
    assert gc.isenabled()


def test_outcome_values_are_the_engine_functions_values_sharing_equal_money() -> None:
    row = ("payment", "att_1", "wx_1", 1000, "CNY", "succeeded", 6, "CNY", "2024-05-19T10:00:00+08:00", None, 3)
    same = ("payment", "att_1", "wx_1", 1000, "CNY", "failed", "2024-05-19T02:00:00Z", None, 6, "CNY")
    other = ("refund", "re_1", None, 999, "USD", "succeeded", "2024-05-19T02:00:00.5Z", "att_0", None, None)
    money = columnar._money_cache()
    built_row = columnar._row_of((1, 1, 0, None, *row, *same), money)
    assert built_row == statement_row(row) and repr(built_row) == repr(statement_row(row))
    record = columnar._record_of((1, 1, 0, None, *row, *same), money)
    assert record == hub_record(same)
    assert record.amount is built_row.amount and record.expected_fee is built_row.fee  # one Money each, not two
    alone = columnar._record_of((None, 1, 0, None, *([None] * len(row)), *other), money)
    assert alone == hub_record(other) and alone.expected_fee is None
    differing = columnar._record_of((1, 1, 0, None, *row, *other), money)
    assert differing == hub_record(other) and differing.amount is not built_row.amount
    for bad in (("transfer", *row[1:]),):  # an unknown kind: the engine's own error, naming the line
        with pytest.raises(ValueError, match="statement line 3: unknown kind 'transfer'"):
            columnar._row_of((1, None, 0, None, *bad, *([None] * len(same))))
    with pytest.raises(ValueError):
        columnar._record_of((None, 1, 0, None, *([None] * len(row)), "transfer", *other[1:]), money)
    with pytest.raises(ValueError, match="unsupported currency"):  # Money still checks what it is given
        columnar._record_of((None, 1, 0, None, *([None] * len(row)), "refund", "re_1", None, 1, "XXX", "succeeded",
                             "2024-05-19T02:00:00Z", None, None, None), money)
    assert money(1000, "CNY") is money(1000, "CNY") == Money(1000, "CNY")
    with pytest.raises(TypeError):  # a bool is no amount, even one equal to a cached int
        money(True, "CNY")
