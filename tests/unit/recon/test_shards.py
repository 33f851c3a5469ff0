"""A day cut into parts, partitioned by key, matched shard by shard and combined gives the Python engine's
result on the same files: the benchmark's generated day (every kind of difference, repeats, refunds, rows
near midnight, failed refunds without a row) at a small size."""

from __future__ import annotations

import gzip
import importlib.util
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from chalicelib.recon import shards
from chalicelib.recon.hub_records import read_export_compact
from chalicelib.recon.matching import match_day_compact
from chalicelib.recon.model import Pooled
from chalicelib.recon.tally import Tally

ROOT = Path(__file__).resolve().parents[3]


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("recon_matching_bench", ROOT / "bench" / "recon_matching.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def day_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    bench = _bench()
    directory = tmp_path_factory.mktemp("day")
    bench.generate(str(directory), 3_000, 7)
    return bench, directory


def _python_result(bench: Any, directory: Path, pool: list[Pooled]) -> tuple[Any, Tally]:
    from chalicelib.channels.registry import adapter
    from chalicelib.recon.run import statement_tuples

    account = bench._account()
    tally = Tally()
    with open(directory / bench.STATEMENT, "rb") as statement, open(directory / bench.EXPORT, "rb") as export:
        rows = tally.compact_rows_of(statement_tuples(adapter("wechatpay"), account, [statement.read()]))
        records = read_export_compact(export, account_id=bench.ACCOUNT, day=bench.DAY, fee_rate_bps=bench.FEE_RATE_BPS)
        result = match_day_compact(bench.DAY, rows, records, pool)
    return result, tally


@pytest.mark.parametrize(("lines", "count"), [(700, 4), (5_000, 1), (1_000, 7)])
def test_a_day_cut_partitioned_and_matched_as_shards_is_the_whole_days_result(
        day_files: tuple[Any, Path], tmp_path: Path, lines: int, count: int) -> None:
    bench, directory = day_files
    expected, expected_tally = _python_result(bench, directory, [])
    assert {str(found.kind) for found in expected.discrepancies} >= set(bench.CLASSES)
    cut = shards.chunk_lines(str(directory / bench.STATEMENT), str(tmp_path / "parts"), lines)
    assert len(cut.parts) == -(-cut.lines // lines) or len(cut.parts) == cut.lines // lines
    out = str(tmp_path / "shards")
    tally = Tally()
    for number, part in enumerate(cut.parts):
        made = shards.partition_statement_part(part, str(cut.header), out, f"s{number}", count)
        shards.add_tally(tally, made["tally"])
    # a DynamoDB export writes many data files: here the one file stands for them
    shards.partition_export_file(str(directory / bench.EXPORT), out, "e0", count, account_id=bench.ACCOUNT,
                                 day=bench.DAY, fee_rate_bps=bench.FEE_RATE_BPS)
    results = [shards.match_shard(bench.DAY, out, shard) for shard in range(count)]
    assert shards.combine(results) == expected
    summary = shards.statement_summary(cut)
    assert summary == expected_tally.summary
    tally._keep(summary)
    tally.check()
    assert (tally.rows, dict(tally.settled), tally.fees) == (
        expected_tally.rows, dict(expected_tally.settled), expected_tally.fees)


def test_a_pooled_item_is_matched_in_its_shard(day_files: tuple[Any, Path], tmp_path: Path) -> None:
    bench, directory = day_files
    whole, _ = _python_result(bench, directory, [])
    pool = [Pooled(since=date(2024, 5, 18), record=found.record) for found in whole.discrepancies
            if found.record is not None and found.row is None][:5]
    pool += [Pooled(since=date(2024, 5, 17), row=found.row) for found in whole.discrepancies
             if found.row is not None and found.record is None][:5]
    expected, _ = _python_result(bench, directory, pool)
    cut = shards.chunk_lines(str(directory / bench.STATEMENT), str(tmp_path / "parts"), 1_000)
    out = str(tmp_path / "shards")
    for number, part in enumerate(cut.parts):
        shards.partition_statement_part(part, str(cut.header), out, f"s{number}", 3)
    shards.partition_export_file(str(directory / bench.EXPORT), out, "e0", 3, account_id=bench.ACCOUNT,
                                 day=bench.DAY, fee_rate_bps=bench.FEE_RATE_BPS)
    results = [shards.match_shard(bench.DAY, out, shard, shards.pool_for_shard(pool, shard, 3)) for shard in range(3)]
    assert shards.combine(results) == expected


def test_a_statement_part_out_of_shape_is_not_sharded(tmp_path: Path) -> None:
    path = tmp_path / "bill.csv"
    path.write_text("交易时间,商户订单号,交易状态,应结订单金额\n`2024-05-19 10:00:00,`att_1,`SUCCESS,`1.00\n"
                    "a second header\n`2024-05-19 10:00:01,`att_2,`SUCCESS,`1.00\n", encoding="utf-8")
    cut = shards.chunk_lines(str(path), str(tmp_path / "parts"), 10)
    with pytest.raises(shards.NotShardable):
        shards.partition_statement_part(cut.parts[0], str(cut.header), str(tmp_path / "out"), "s0", 2)
    assert os.path.exists(cut.parts[0])


def _cut_line_by_line(data: bytes, lines: int) -> tuple[list[bytes], list[bytes]]:
    """What ``chunk_lines`` writes, by its rules read literally, a line at a time: every ``\\n``-terminated line
    numbered (a last line without one only when it has content), a part closed once it holds ``lines`` lines and its
    last line starts with a backtick; and the last two lines with content."""
    *complete, last = data.split(b"\n")
    found = complete + ([last] if last.strip() else [])
    parts, part, tail = [], [], [b"", b""]
    for number, line in enumerate(found, start=1):
        part.append(b"%d\x01%s\n" % (number, line))
        if len(part) >= lines and line[:1] == b"`":
            parts.append(b"".join(part))
            part = []
        if line.strip():
            tail = [tail[1], line]
    if part:
        parts.append(b"".join(part))
    return parts, [line for line in tail if line]


@pytest.mark.parametrize("lines", [1, 2, 3, 7, 1_000])
def test_chunk_lines_cuts_as_its_rules_say_in_blocks_or_line_by_line(tmp_path: Path, lines: int) -> None:
    """The cut works on whole blocks of lines (one join per block, ISA-L inflating and compressing); it must give the
    parts a line-at-a-time cut gives: blank lines numbered, CRLF kept, the summary's header never ending a part, a
    last line without its newline, gzip members one after another, reads that end inside a line."""
    detail = [b"`2024-05-19 10:00:%02d,`att_%d,`SUCCESS,`1.00\r" % (n % 60, n) for n in range(40)]
    text = b"\n".join([b"\xef\xbb\xbf\xe4\xba\xa4\xe6\x98\x93\xe6\x97\xb6\xe9\x97\xb4,a,b,c\r", *detail[:9], b"", b"  \r",
                       *detail[9:], "总交易单数,x\r".encode(), b"`40,`40.00", b"", b""]) + b"`tail without newline"
    source = tmp_path / "bill.csv.gz"
    source.write_bytes(gzip.compress(text[:333]) + gzip.compress(text[333:]))
    for read in (64, 1 << 20):  # a read buffer that ends inside lines, and one that holds the file
        shards._READ = read
        try:
            cut = shards.chunk_lines(str(source), str(tmp_path / f"parts-{lines}-{read}"), lines)
        finally:
            shards._READ = 1 << 20
        expected, tail = _cut_line_by_line(text, lines)
        assert [gzip.decompress(Path(part).read_bytes()) for part in cut.parts] == expected
        assert cut.lines == text.count(b"\n") + 1 and cut.header == "交易时间,a,b,c"
        assert cut.tail == [line.decode().rstrip("\r") for line in tail] == ["`40,`40.00", "`tail without newline"]
