"""Reconciliation matching: the DuckDB engine against plain DuckDB, and the Python engine against a pandas merge,
on a day of 1,000,000 statement rows x 1,000,000 records.

Data (generated once per run, seeded, in a temporary directory unless ``--data`` names one to keep and reuse):
* ``statement.csv.gz``: a WeChat Pay trade bill (ALL) in the real format (backtick cells, the sandbox's column
  set and amount/fee rendering, a summary block), in time order, as WeChat delivers it with tar_type=GZIP.
* ``hub-export.json.gz``: the recon-indexed attempt and refund items of the day as DynamoDB JSON lines, the
  shape of a DynamoDB export to S3 (whole items, every attribute the hub stores), in shuffled (hash) order.
* About 1 % of the day per class of difference: channel only, hub only, amount, currency, status (refunds:
  the only records the recon index holds without success), fee, duplicate row; plus 1 % failed refunds with
  no row (no difference). Times are spread over the day, so ~4 % of the unpaired items fall within 30 min of
  midnight and are carried to the pool rather than reported, by both implementations.

Every measurement runs in its own child interpreter, so peaks do not mix; peak RSS is the child's
``ru_maxrss`` (interpreter and imports included: the ``startup MB`` column; Linux carries a parent's peak into
its children, so the parent here stays at ~16 MB and generates the data in a child too). Each phase is timed
in wall-clock and CPU seconds (``time.process_time``); rows/s are per CPU second, steadier than wall time when
other work shares the machine.
* **DuckDB engine, end to end** (the headline): what a run executes, ``chalicelib.recon.run.
  match_statement_columnar``: the export read by DuckDB's JSON reader (``hub_records.load_export``) while the
  bill is unzipped on another thread, then its cells split by the WeChat adapter's columnar reader, every key
  with one row and one record decided in SQL (only differences become Python values), repeated keys judged by
  ``DayMatcher`` (``chalicelib/recon/columnar.py``), the summary check. DuckDB limited to ENGINE_MEMORY, 2 threads.
* **plain DuckDB** (the issue's anchor): ``read_csv`` of the bill, ``read_json`` of the export (only the fields
  it needs), a full outer join and the classification in SQL, 256 MB and 2 threads; no exactness checks, no
  discrepancy objects, counts only.
* **Python engine, end to end**: the code a reconciliation run executed before the DuckDB engine, ``chalicelib.recon.run.
  match_statement``: the WeChat adapter's ``parse_statement_compact`` (the product's trade bill parser, by header
  name, rows as plain tuples) streamed through ``Tally.compact_rows_of`` (counts and totals), the hub export read
  by ``read_export_compact`` (the product's export reader) into the engine's index, ``match_day_compact``, then
  the summary check. (A run reads the hub side from the recon index's query pages, ``hub_record_tuples``, into
  the same tuples; the export is the form a day of 100 million rows is read in.)
* **engine, end to end on dataclasses**: the dataclass API on the same files: ``match_day(day,
  adapter.parse_statement(...), read_export(...))``: a ``StatementRow`` per row and a ``HubRecord`` per record,
  built on the same readers.
* **engine, by phase**: the same files read into lists first (the run's statement tuples; export -> compact
  record tuples), the tally over the row list, then ``DayMatcher`` on the tuples alone (index + match + finish +
  sort): the engine-only time. Its peak includes both lists held in memory, which are frozen out of the garbage
  collector (``gc.freeze``) before the engine runs: rescanning the harness's 2 million tuples is not the
  engine's cost (a streaming run holds no such lists).
* **pandas**: ``read_csv`` of the bill (C parser, only the needed columns), the export decoded line by line
  (text lines, ``JSONDecoder.raw_decode``: the engine's reader's JSON path) into column lists (faster than
  ``read_json(lines=True)`` + ``json_normalize``, which took ~50 us a line and 3 GB for 200,000 lines here),
  then ``merge(how="outer", indicator=True)`` on (kind, object_id) and the same classification vectorised
  (duplicates, near-midnight carry, status > currency > amount > fee).
The counts of every class, the carried items, matched pairs and matched totals must agree between all of them,
or the script exits 1. The VERDICT line compares the headline with pandas end to end (CPU time) and its
peak against the 512 MB budget.

    python bench/recon_matching.py [--rows 1000000] [--data DIR] [--skip-pandas] [--duckdb-only] [--per-class-bp 100]
                                   [--pairs 1]

``--per-class-bp`` sets how much of the day each class of difference is, in basis points (100: the benchmark's
1 % a class, 7 % in all; 1: a real day's share). A ``--data`` directory holds one day: give each its own.
``--pairs N`` runs the DuckDB engine and plain DuckDB N times each, one after the other, and adds a verdict on their
median wall times (a single run of each moves by a few per cent with the machine).
"""

from __future__ import annotations

import argparse
import base64
import gc
import gzip
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, fmt, table  # noqa: E402

DAY = date(2024, 5, 19)
BEIJING = timezone(timedelta(hours=8))
ACCOUNT = "wx-bench"
FEE_RATE_BPS = 60
SEED = 20240519
CLASSES = ("channel_only", "hub_only", "amount", "currency", "status", "fee", "duplicate_row")
STATEMENT, EXPORT, META = "statement.csv.gz", "hub-export.json.gz", "meta.json"
NEAR_MIDNIGHT_S = 30 * 60
REPEAT = 3  # runs of the engine alone and of merge + classify; each keeps its fastest
PEAK_BUDGET_MB = 512  # the memory budget for the engine end to end

# --- data ------------------------------------------------------------------------------------------------------

_ATTEMPT = ('{{"Item":{{"pk":{{"S":"ATT#{id}"}},"sk":{{"S":"ATTEMPT"}},"attempt_id":{{"S":"{id}"}},'
            '"payment_id":{{"S":"{pay}"}},"merchant_id":{{"S":"mch_bench"}},"channel":{{"S":"wechatpay"}},'
            '"account_id":{{"S":"' + ACCOUNT + '"}},"method":{{"S":"wechat.jsapi"}},"amount":{{"N":"{amount}"}},'
            '"currency":{{"S":"{currency}"}},"status":{{"S":"{status}"}},"version":{{"N":"3"}},'
            '"created_at":{{"S":"{created}"}},"updated_at":{{"S":"{at}"}},"expires_at":{{"S":"{expires}"}},'
            '"channel_transaction_id":{{"S":"{ref}"}},"raw_status":{{"S":"SUCCESS"}},'
            '"recon_pk":{{"S":"' + ACCOUNT + '#{day}"}},"recon_sk":{{"S":"payment#{id}"}},"recon_at":{{"S":"{at}"}}}}}}')
_REFUND = ('{{"Item":{{"pk":{{"S":"RE#{id}"}},"sk":{{"S":"REFUND"}},"refund_id":{{"S":"{id}"}},'
           '"payment_id":{{"S":"{pay}"}},"attempt_id":{{"S":"{attempt}"}},"merchant_id":{{"S":"mch_bench"}},'
           '"channel":{{"S":"wechatpay"}},"account_id":{{"S":"' + ACCOUNT + '"}},"amount":{{"N":"{amount}"}},'
           '"currency":{{"S":"{currency}"}},"status":{{"S":"{status}"}},"version":{{"N":"2"}},'
           '"created_at":{{"S":"{at}"}},"updated_at":{{"S":"{at}"}},"merchant_refund_no":{{"S":"r-{id}"}},'
           '"automatic":{{"BOOL":false}},"channel_refund_id":{{"S":"{ref}"}},'
           '"recon_pk":{{"S":"' + ACCOUNT + '#{day}"}},"recon_sk":{{"S":"refund#{id}"}},"recon_at":{{"S":"{at}"}}}}}}')


def _object_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{base64.b32encode(rng.getrandbits(120).to_bytes(15, 'big')).decode().lower()}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _bill_line(columns: list[str], cells: dict[str, str]) -> str:
    return ",".join("`" + cells.get(column, "") for column in columns)


def generate(directory: str, rows: int, seed: int, per_class_bp: int = 100) -> dict[str, Any]:
    """Write the statement and the hub export; return what was injected (``per_class_bp``: basis points of the
    day per class of difference)."""
    from sandbox.wechatpay.bill import HEADERS, SUMMARY_HEADERS, fee_yuan, yuan
    from sandbox.wechatpay.state import fee_millifen

    rng = random.Random(seed)
    per_class = max(1, rows * per_class_bp // 10_000)
    plan = ["ok"] * rows
    chosen = rng.sample(range(rows), per_class * len(CLASSES))
    for position, index in enumerate(chosen):
        plan[index] = CLASSES[position // per_class]
    columns = HEADERS["ALL"]
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=BEIJING)
    statement_lines = [",".join(columns)]
    export_lines: list[str] = []
    payments_fen = refunds_fen = fees_millifen = 0
    for index, klass in enumerate(plan):
        kind = "refund" if klass == "status" else "payment" if klass == "fee" else (
            "refund" if rng.random() < 0.1 else "payment")
        moment = midnight + timedelta(seconds=int(index * 86_400 / rows) + rng.randrange(0, max(1, 86_400 // rows)))
        bill_time, at = moment.strftime("%Y-%m-%d %H:%M:%S"), _iso(moment)
        attempt_id, pay_id = _object_id(rng, "att"), _object_id(rng, "pay")
        transaction_id = f"42000022462024051{index:011d}"
        hub_currency = row_currency = "CNY"
        hub_status, row_status = "succeeded", "SUCCESS"
        if kind == "payment":
            amount = hub_amount = rng.randint(2, 200_000)
            fee = fee_millifen(amount, FEE_RATE_BPS)
        else:
            amount = hub_amount = rng.randint(2, 50_000)
            fee = -fee_millifen(amount, FEE_RATE_BPS)
        if klass == "amount":
            amount += rng.choice((-1, 1, 100))
        elif klass == "currency":
            row_currency = "HKD"
        elif klass == "fee":
            fee += 1_000  # one fen more than the schedule says
        elif klass == "status":
            hub_status, row_status = rng.choice((("processing", "SUCCESS"), ("failed", "SUCCESS"),
                                                 ("succeeded", "PROCESSING")))
        if kind == "payment":
            cells = {"交易时间": bill_time, "公众账号ID": "wxd678efh567hg6787", "商户号": "1900000109", "特约商户号": "0",
                     "微信订单号": transaction_id, "商户订单号": attempt_id, "用户标识": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                     "交易类型": "JSAPI", "交易状态": row_status, "付款银行": "OTHERS", "货币种类": row_currency,
                     "应结订单金额": yuan(amount), "代金券金额": "0.00", "微信退款单号": "0", "商户退款单号": "0",
                     "退款金额": "0.00", "充值券退款金额": "0.00", "商品名称": "会员月卡", "手续费": fee_yuan(fee),
                     "费率": "0.60%", "订单金额": yuan(amount), "申请退款金额": "0.00"}
            record = _ATTEMPT.format(id=attempt_id, pay=pay_id, amount=hub_amount, currency=hub_currency,
                                     status=hub_status, created=_iso(moment - timedelta(seconds=20)), at=at,
                                     expires=_iso(moment + timedelta(hours=2)), ref=transaction_id, day=DAY)
        else:
            refund_id, refund_ref = _object_id(rng, "re"), f"503000{index:023d}"
            cells = {"交易时间": bill_time, "公众账号ID": "wxd678efh567hg6787", "商户号": "1900000109", "特约商户号": "0",
                     "微信订单号": transaction_id, "商户订单号": attempt_id, "用户标识": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                     "交易类型": "JSAPI", "交易状态": "REFUND", "付款银行": "OTHERS", "货币种类": row_currency,
                     "应结订单金额": "0.00", "代金券金额": "0.00", "微信退款单号": refund_ref, "商户退款单号": refund_id,
                     "退款金额": yuan(amount), "充值券退款金额": "0.00", "退款类型": "ORIGINAL", "退款状态": row_status,
                     "商品名称": "会员月卡", "手续费": fee_yuan(fee), "费率": "0.60%", "订单金额": "0.00",
                     "申请退款金额": yuan(amount)}
            record = _REFUND.format(id=refund_id, pay=pay_id, attempt=attempt_id, amount=hub_amount,
                                    currency=hub_currency, status=hub_status, at=at, ref=refund_ref, day=DAY)
        if klass != "hub_only":
            line = _bill_line(columns, cells)
            statement_lines.append(line)
            if klass == "duplicate_row":
                statement_lines.append(line)
            copies = 2 if klass == "duplicate_row" else 1  # the channel's summary adds up its own rows
            if kind == "payment":
                payments_fen += copies * amount
            else:
                refunds_fen += copies * amount
            fees_millifen += copies * fee
        if klass != "channel_only":
            export_lines.append(record)
    for index in range(per_class):  # refunds the channel turned down: in the hub (failed), not on the statement
        moment = midnight + timedelta(seconds=rng.randrange(86_400))
        export_lines.append(_REFUND.format(id=_object_id(rng, "re"), pay=_object_id(rng, "pay"),
                                           attempt=_object_id(rng, "att"), amount=rng.randint(1, 50_000), currency="CNY",
                                           status="failed", at=_iso(moment), ref=f"509000{index:023d}", day=DAY))
    summary = {"总交易单数": str(len(statement_lines) - 1), "应结订单总金额": yuan(payments_fen), "退款总金额": yuan(refunds_fen),
               "充值券退款总金额": "0.00", "手续费总金额": fee_yuan(fees_millifen), "订单总金额": yuan(payments_fen),
               "申请退款总金额": yuan(refunds_fen)}
    statement_lines += [",".join(SUMMARY_HEADERS["ALL"]), _bill_line(SUMMARY_HEADERS["ALL"], summary)]
    with gzip.open(os.path.join(directory, STATEMENT), "wb", compresslevel=6) as out:
        out.write(("\r\n".join(statement_lines) + "\r\n").encode())
    statement_rows = len(statement_lines) - 3
    del statement_lines
    rng.shuffle(export_lines)  # an export lists items in hash order, not time order
    with gzip.open(os.path.join(directory, EXPORT), "wb", compresslevel=6) as out:
        for start in range(0, len(export_lines), 10_000):
            out.write(("\n".join(export_lines[start : start + 10_000]) + "\n").encode())
    meta = {"rows": rows, "seed": seed, "per_class_bp": per_class_bp, "statement_rows": statement_rows,
            "hub_records": len(export_lines),
            "injected_per_class": per_class}
    with open(os.path.join(directory, META), "w", encoding="utf-8") as out:
        json.dump(meta, out)
    return meta


# --- children --------------------------------------------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Laps:
    """Wall-clock and CPU seconds of consecutive phases (CPU time is steadier on a shared machine); a phase
    timed more than once keeps its fastest run."""

    def __init__(self) -> None:
        self.laps: dict[str, list[float]] = {}
        self._last = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        this = [now[0] - self._last[0], now[1] - self._last[1]]
        if name not in self.laps or this[1] < self.laps[name][1]:
            self.laps[name] = this
        self._last = now


def _chunks(path: str, size: int = 64 * 1024) -> Any:
    with open(path, "rb") as stream:
        while chunk := stream.read(size):
            yield chunk


def _engine_counts(result: Any) -> dict[str, Any]:
    counts = Counter(str(found.kind) for found in result.discrepancies)
    return {"classes": {klass: counts.get(klass, 0) for klass in CLASSES}, "carried": len(result.carried),
            "matched": result.matched, "matched_amount": result.matched_amount}


def _account() -> Any:
    from chalicelib.config.accounts import ChannelAccount, ChannelAccountConfig, ChannelSecrets

    config = ChannelAccountConfig(account_id=ACCOUNT, channel="wechatpay", methods=("wechat.jsapi",),
                                  api_base_url="https://api.mch.weixin.qq.com",
                                  settings={"mchid": "1900000109", "appid": "wxd678efh567hg6787",
                                            "fee_rate_bps": str(FEE_RATE_BPS)})
    return ChannelAccount(config, ChannelSecrets({}))


def _bill_columns() -> list[str]:
    from sandbox.wechatpay.bill import HEADERS

    return list(HEADERS["ALL"])


def _export_reader(directory: str, account: Any) -> Any:
    from chalicelib.recon.day_records import fee_rate_bps
    from chalicelib.recon.hub_records import read_export_compact

    with open(os.path.join(directory, EXPORT), "rb") as export:
        yield from read_export_compact(export, account_id=ACCOUNT, day=DAY, fee_rate_bps=fee_rate_bps(account))


def child_engine(directory: str) -> dict[str, Any]:
    """The headline: what a run executes, from the two files to the checked result."""
    from chalicelib.channels.registry import adapter
    from chalicelib.recon.run import match_statement
    from chalicelib.recon.tally import Tally

    account = _account()
    adapter("wechatpay")  # imported before the clock starts, as in a run that has fetched the statement
    startup, laps = _peak_mb(), Laps()
    tally = Tally()
    result = match_statement(account, DAY, _chunks(os.path.join(directory, STATEMENT)), _export_reader(directory, account),
                             tally=tally)
    laps.lap("total")
    if tally.summary is None or tally.rows != tally.summary.count:
        raise SystemExit(f"the tally counted {tally.rows} rows against the summary's {tally.summary}")
    return {"laps": laps.laps, "peak_mb": _peak_mb(), "startup_mb": startup, **_engine_counts(result)}


def child_columnar(directory: str) -> dict[str, Any]:
    """The run's path on the DuckDB engine: ``match_statement_columnar`` from the two files (the bill by the
    adapter's columnar reader, its unzip beside DuckDB's read of the export) to the checked result."""
    from chalicelib.channels.registry import adapter
    from chalicelib.recon import columnar
    from chalicelib.recon.run import match_statement_columnar
    from chalicelib.recon.tally import Tally

    account = _account()
    adapter("wechatpay")
    startup, laps = _peak_mb(), Laps()
    tally = Tally()
    with columnar.Workspace(memory_limit=ENGINE_MEMORY, threads=DUCKDB_THREADS) as space:
        result = match_statement_columnar(account, DAY, os.path.join(directory, STATEMENT),
                                          [os.path.join(directory, EXPORT)], tally=tally, space=space)
        clean = space.stats["matched_in_sql"]
    laps.lap("total")
    if tally.summary is None or tally.rows != tally.summary.count:
        raise SystemExit(f"the tally counted {tally.rows} rows against the summary's {tally.summary}")
    return {"laps": laps.laps, "peak_mb": _peak_mb(), "startup_mb": startup, "clean": clean, **_engine_counts(result)}


def child_dataclasses(directory: str) -> dict[str, Any]:
    from chalicelib.channels.base import StatementRow
    from chalicelib.channels.registry import adapter
    from chalicelib.recon.day_records import fee_rate_bps
    from chalicelib.recon.hub_records import read_export
    from chalicelib.recon.matching import match_day

    account, wechat = _account(), adapter("wechatpay")
    startup, laps = _peak_mb(), Laps()
    with open(os.path.join(directory, EXPORT), "rb") as export:
        records = read_export(export, account_id=ACCOUNT, day=DAY, fee_rate_bps=fee_rate_bps(account))
        rows = (item for item in wechat.parse_statement(account, _chunks(os.path.join(directory, STATEMENT)))
                if isinstance(item, StatementRow))
        result = match_day(DAY, rows, records)
    laps.lap("total")
    return {"laps": laps.laps, "peak_mb": _peak_mb(), "startup_mb": startup, **_engine_counts(result)}


def child_phases(directory: str) -> dict[str, Any]:
    from chalicelib.channels.base import StatementSummary
    from chalicelib.channels.registry import adapter
    from chalicelib.recon.matching import DayMatcher
    from chalicelib.recon.run import statement_tuples
    from chalicelib.recon.tally import Tally

    account, wechat = _account(), adapter("wechatpay")
    startup, laps = _peak_mb(), Laps()
    rows = [item for item in statement_tuples(wechat, account, _chunks(os.path.join(directory, STATEMENT)))
            if not isinstance(item, StatementSummary)]
    laps.lap("parse")
    records = list(_export_reader(directory, account))
    laps.lap("read")
    gc.collect()
    gc.freeze()  # the input lists are this harness's, not the engine's: keep the collector from rescanning them
    laps.lap("freeze")
    for _ in range(REPEAT):
        for _row in Tally().compact_rows_of(rows):
            pass
        laps.lap("tally")
    for _ in range(REPEAT):  # the engine-only figures are the fastest of REPEAT runs, like merge + classify's
        matcher = DayMatcher(DAY)
        matcher.add_record_tuples(records)
        laps.lap("index")
        found = list(matcher.match_row_tuples(rows))
        found.extend(matcher.finish())
        result = matcher.result(found)
        laps.lap("match")
        del matcher, found
    return {"laps": laps.laps, "peak_mb": _peak_mb(), "startup_mb": startup, **_engine_counts(result)}


def child_pandas(directory: str) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    startup, laps = _peak_mb(), Laps()
    wanted = ["交易时间", "微信订单号", "商户订单号", "交易状态", "货币种类", "应结订单金额", "微信退款单号", "商户退款单号",
              "退款金额", "退款状态", "手续费"]
    raw = pd.read_csv(os.path.join(directory, STATEMENT), compression="gzip", encoding="utf-8-sig", usecols=wanted,
                      dtype=str, keep_default_na=False)
    raw = raw[raw["交易状态"].str.startswith("`")]  # drop the summary header and row (padded with empty cells)
    cell = {name: raw[name].str[1:] for name in wanted}
    refund = cell["交易状态"] == "REFUND"
    status_word = cell["退款状态"].where(refund, cell["交易状态"])
    fee_5dp = cell["手续费"].str.replace(".", "", regex=False).astype("int64")  # yuan with 5 decimals
    fee_fen = np.sign(fee_5dp) * ((fee_5dp.abs() + 500) // 1000)  # half up, as the parser rounds
    moment = pd.to_datetime(cell["交易时间"], format="%Y-%m-%d %H:%M:%S")
    microsecond = pd.Timedelta(microseconds=1)
    statement = pd.DataFrame({
        "kind": np.where(refund, "refund", "payment"),
        "object_id": cell["商户退款单号"].where(refund, cell["商户订单号"]),
        "amount": cell["退款金额"].where(refund, cell["应结订单金额"]).str.replace(".", "", regex=False).astype("Int64"),
        "currency": cell["货币种类"],
        "status": status_word.where(status_word != "SUCCESS", "succeeded").str.lower(),
        "fee": fee_fen.astype("Int64"),
        "us_of_day": (moment - moment.dt.floor("D")) // microsecond,
    })
    del raw, cell, refund, status_word, fee_5dp, fee_fen, moment
    laps.lap("read_statement")

    columns: dict[str, list[Any]] = {name: [] for name in ("kind", "object_id", "amount", "currency", "status", "at")}
    # Text lines and JSONDecoder.raw_decode: what the engine's export reader does (~1.5 us a line less than
    # json.loads of bytes lines), so that neither side wins on the JSON decoding they share.
    decode = json.JSONDecoder().raw_decode
    with gzip.open(os.path.join(directory, EXPORT), "rt", encoding="utf-8") as export:
        for line in export:
            item = decode(line)[0]["Item"]
            if item.get("recon_pk", {}).get("S") != f"{ACCOUNT}#{DAY}":
                continue
            kind, _, object_id = item["recon_sk"]["S"].partition("#")
            columns["kind"].append(kind)
            columns["object_id"].append(object_id)
            columns["amount"].append(int(item["amount"]["N"]))
            columns["currency"].append(item["currency"]["S"])
            columns["status"].append(item["status"]["S"])
            columns["at"].append(item["recon_at"]["S"])
    hub = pd.DataFrame(columns).astype({"amount": "Int64"})
    del columns
    at = (pd.to_datetime(hub.pop("at"), utc=True) + pd.Timedelta(hours=8)).dt.tz_localize(None)  # Beijing, UTC+8
    hub["us_of_day"] = (at - at.dt.floor("D")) // microsecond
    del at
    payment = hub["kind"] == "payment"
    hub["fee"] = ((hub["amount"] * FEE_RATE_BPS + 5_000) // 10_000).where(payment)  # the schedule: payments only
    laps.lap("read_export")

    for _ in range(REPEAT):
        outcome = _merge_and_classify(statement, hub, laps)
    return {"laps": laps.laps, "peak_mb": _peak_mb(), "startup_mb": startup, **outcome}


def _merge_and_classify(statement: Any, hub: Any, laps: Laps) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    duplicate = statement.duplicated(["kind", "object_id"], keep="first")
    first = statement[~duplicate]
    merged = first.merge(hub, on=["kind", "object_id"], how="outer", indicator=True, suffixes=("_c", "_h"))
    laps.lap("merge")

    day_us, window_us = 86_400 * 10**6, NEAR_MIDNIGHT_S * 10**6

    def near(us: pd.Series) -> pd.Series:
        return np.minimum(us, day_us - us) <= window_us

    side = merged["_merge"]
    left, right, both = side == "left_only", side == "right_only", side == "both"
    hub_success = right & (merged["status_h"] == "succeeded")
    def differ(a: pd.Series, b: pd.Series) -> pd.Series:
        return both & (a != b).fillna(True).astype(bool)

    status_d = differ(merged["status_c"] == "succeeded", merged["status_h"] == "succeeded")
    currency_d = differ(merged["currency_c"], merged["currency_h"])
    amount_d = differ(merged["amount_c"], merged["amount_h"])
    fee_d = differ(merged["fee_c"], merged["fee_h"]) & merged["fee_h"].notna()
    near_c, near_h = near(merged["us_of_day_c"]), near(merged["us_of_day_h"])
    matched = both & ~(status_d | currency_d | amount_d | fee_d)
    moved = matched & (merged["status_c"] == "succeeded")
    signed = merged["amount_c"].where(merged["kind"] == "payment", -merged["amount_c"])
    totals = signed[moved].groupby(merged["currency_c"][moved]).sum()
    classes = {
        "channel_only": int((left & ~near_c).sum()), "hub_only": int((hub_success & ~near_h).sum()),
        "status": int(status_d.sum()), "currency": int((currency_d & ~status_d).sum()),
        "amount": int((amount_d & ~status_d & ~currency_d).sum()),
        "fee": int((fee_d & ~status_d & ~currency_d & ~amount_d).sum()), "duplicate_row": int(duplicate.sum()),
    }
    laps.lap("classify")
    return {"classes": {k: classes[k] for k in CLASSES},
            "carried": int((left & near_c).sum() + (hub_success & near_h).sum()), "matched": int(matched.sum()),
            "matched_amount": {str(k): int(v) for k, v in sorted(totals.items())}}


DUCKDB_MEMORY, DUCKDB_THREADS = "256MB", 2  # the plain DuckDB baseline's settings
ENGINE_MEMORY = "300MB"  # the DuckDB engine's own limit, columnar.MEMORY_LIMIT (spilled to its scratch directory beyond it)


def child_duckdb(directory: str) -> dict[str, Any]:
    """Plain DuckDB on the same files: read_csv of the bill, read_json of the export, the classification in SQL
    (the pandas baseline's rules), under a 256 MB memory limit on 2 threads."""
    import duckdb

    bill_columns = _bill_columns()
    startup, laps = _peak_mb(), Laps()
    con = duckdb.connect(config={"memory_limit": DUCKDB_MEMORY, "threads": DUCKDB_THREADS})
    c = {name: f'"{name}"' for name in ("交易时间", "微信订单号", "商户订单号", "交易状态", "货币种类", "应结订单金额",
                                        "微信退款单号", "商户退款单号", "退款金额", "退款状态", "手续费")}
    cell = {name: f"substr({quoted}, 2)" for name, quoted in c.items()}
    refund = f"{cell['交易状态']} = 'REFUND'"
    word = f"CASE WHEN {refund} THEN {cell['退款状态']} ELSE {cell['交易状态']} END"
    fee5 = f"CAST(replace({cell['手续费']}, '.', '') AS BIGINT)"
    con.execute(f"""
        CREATE TABLE statement AS
        SELECT CASE WHEN {refund} THEN 'refund' ELSE 'payment' END AS kind,
               CASE WHEN {refund} THEN {cell['商户退款单号']} ELSE {cell['商户订单号']} END AS object_id,
               CAST(replace(CASE WHEN {refund} THEN {cell['退款金额']} ELSE {cell['应结订单金额']} END, '.', '') AS BIGINT)
                   AS amount,
               {cell['货币种类']} AS currency,
               CASE WHEN {word} = 'SUCCESS' THEN 'succeeded' ELSE lower({word}) END AS status,
               sign({fee5}) * ((abs({fee5}) + 500) // 1000) AS fee,
               epoch(CAST({cell['交易时间']} AS TIMESTAMP)) % 86400 AS s_of_day,
               row_number() OVER () AS line
        FROM read_csv(?, header=true, all_varchar=true, delim=',', quote='', escape='', null_padding=true,
                      auto_detect=false, strict_mode=false, columns={{{", ".join(f"'{n}': 'VARCHAR'" for n in
                      bill_columns)}}})
        WHERE left({c['交易状态']}, 1) = '`'""", [os.path.join(directory, STATEMENT)])
    laps.lap("read_statement")
    s = "STRUCT(S VARCHAR)"
    con.execute(f"""
        CREATE TABLE hub AS
        SELECT split_part(it.recon_sk.S, '#', 1) AS kind, split_part(it.recon_sk.S, '#', 2) AS object_id,
               CAST(it.amount.N AS BIGINT) AS amount, it.currency.S AS currency, it.status.S AS status,
               epoch(CAST(it.recon_at.S AS TIMESTAMPTZ) + INTERVAL 8 HOUR) % 86400 AS s_of_day,
               CASE WHEN split_part(it.recon_sk.S, '#', 1) = 'payment'
                    THEN (CAST(it.amount.N AS BIGINT) * {FEE_RATE_BPS} + 5000) // 10000 END AS fee
        FROM (SELECT Item AS it FROM read_json(?, format='newline_delimited', columns={{'Item':
              'STRUCT(recon_pk {s}, recon_sk {s}, amount STRUCT(N VARCHAR), currency {s}, status {s}, recon_at {s})'}}))
        WHERE it.recon_pk.S = '{ACCOUNT}#{DAY}'""", [os.path.join(directory, EXPORT)])
    laps.lap("read_export")
    near = NEAR_MIDNIGHT_S
    for _ in range(REPEAT):
        con.execute(f"""
            CREATE OR REPLACE TABLE classified AS
            WITH ranked AS (SELECT *, row_number() OVER (PARTITION BY kind, object_id ORDER BY line) AS nth FROM statement),
            pairs AS (SELECT r.kind IS NOT NULL AS has_row, h.kind IS NOT NULL AS has_record,
                             r.amount AS r_amount, h.amount AS h_amount, r.currency AS r_currency, h.currency AS h_currency,
                             r.status AS r_status, h.status AS h_status, r.fee AS r_fee, h.fee AS h_fee,
                             coalesce(r.kind, h.kind) AS kind,
                             least(r.s_of_day, 86400 - r.s_of_day) <= {near} AS r_near,
                             least(h.s_of_day, 86400 - h.s_of_day) <= {near} AS h_near
                      FROM (SELECT * FROM ranked WHERE nth = 1) r FULL OUTER JOIN hub h USING (kind, object_id))
            SELECT *, has_row AND has_record AND (r_status = 'succeeded') <> (h_status = 'succeeded') AS d_status,
                   has_row AND has_record AND r_currency <> h_currency AS d_currency,
                   has_row AND has_record AND r_amount <> h_amount AS d_amount,
                   has_row AND has_record AND h_fee IS NOT NULL AND r_fee IS DISTINCT FROM h_fee AS d_fee
            FROM pairs""")
        found = con.execute("""
            SELECT count(*) FILTER (WHERE has_row AND NOT has_record AND NOT r_near),
                   count(*) FILTER (WHERE has_record AND NOT has_row AND h_status = 'succeeded' AND NOT h_near),
                   count(*) FILTER (WHERE d_status),
                   count(*) FILTER (WHERE d_currency AND NOT d_status),
                   count(*) FILTER (WHERE d_amount AND NOT d_status AND NOT d_currency),
                   count(*) FILTER (WHERE d_fee AND NOT d_status AND NOT d_currency AND NOT d_amount),
                   (SELECT count(*) FROM statement) - (SELECT count(*) FROM (SELECT DISTINCT kind, object_id FROM statement)),
                   count(*) FILTER (WHERE has_row AND NOT has_record AND r_near)
                     + count(*) FILTER (WHERE has_record AND NOT has_row AND h_status = 'succeeded' AND h_near),
                   count(*) FILTER (WHERE has_row AND has_record AND NOT (d_status OR d_currency OR d_amount OR d_fee))
            FROM classified""").fetchone()
        totals = con.execute("""
            SELECT r_currency, sum(CASE WHEN kind = 'payment' THEN r_amount ELSE -r_amount END) FROM classified
            WHERE has_row AND has_record AND NOT (d_status OR d_currency OR d_amount OR d_fee) AND r_status = 'succeeded'
            GROUP BY r_currency ORDER BY r_currency""").fetchall()
        laps.lap("classify")
    assert found is not None
    classes = dict(zip(("channel_only", "hub_only", "status", "currency", "amount", "fee", "duplicate_row"), found[:7],
                       strict=True))
    return {"laps": laps.laps, "peak_mb": _peak_mb(), "startup_mb": startup,
            "classes": {klass: int(classes[klass]) for klass in CLASSES}, "carried": int(found[7]),
            "matched": int(found[8]), "matched_amount": {str(k): int(v) for k, v in totals}}


def child_generate(directory: str, rows: int, per_class_bp: int) -> dict[str, Any]:
    started = time.perf_counter()
    return {**generate(directory, rows, SEED, per_class_bp), "seconds": time.perf_counter() - started}


CHILDREN = {"duckdb": child_duckdb, "columnar": child_columnar, "engine": child_engine, "dataclasses": child_dataclasses,
            "phases": child_phases, "pandas": child_pandas, "generate": child_generate}


def run_child(mode: str, directory: str, rows: int, per_class_bp: int = 100) -> dict[str, Any]:
    # A child starts with the peak RSS of this process (Linux keeps ru_maxrss across fork and exec), so this
    # process stays small: it generates nothing and loads nothing itself.
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", mode, "--data", directory,
                           "--rows", str(rows), "--per-class-bp", str(per_class_bp)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {mode} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report ----------------------------------------------------------------------------------------------------


def _rate(rows: int, seconds: float) -> str:
    return fmt(rows / seconds, 0) if seconds > 0 else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="statement rows (and hub records)")
    parser.add_argument("--data", help="directory for the generated files, kept and reused (default: a temp dir)")
    parser.add_argument("--skip-pandas", action="store_true", help="no pandas baseline")
    parser.add_argument("--duckdb-only", action="store_true",
                        help="the DuckDB engine, plain DuckDB and the Python engine end to end only")
    parser.add_argument("--per-class-bp", type=int, default=100,
                        help="differences injected per class, in basis points of the day (default 100: 1 %%, 7 %% in all)")
    parser.add_argument("--pairs", type=int, default=1,
                        help="run the DuckDB engine and plain DuckDB this many times each, alternately, and compare "
                             "their median wall times too (one run each by default)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure = CHILDREN[args.child]
        print(json.dumps(child_generate(args.data, args.rows, args.per_class_bp) if measure is child_generate
                         else measure(args.data)))
        return 0

    started = time.perf_counter()
    directory = args.data or tempfile.mkdtemp(prefix="recon-bench-")
    os.makedirs(directory, exist_ok=True)
    try:
        meta_path = os.path.join(directory, META)
        meta: dict[str, Any] | None = None
        if os.path.exists(meta_path):
            with open(meta_path, encoding="utf-8") as stream:
                meta = json.load(stream)
        if (not meta or meta.get("rows") != args.rows or meta.get("seed") != SEED
                or meta.get("per_class_bp", 100) != args.per_class_bp):
            meta = run_child("generate", directory, args.rows, args.per_class_bp)
            print(f"generated in {meta['seconds']:.1f} s", flush=True)
        sizes = {name: os.path.getsize(os.path.join(directory, name)) / 2**20 for name in (STATEMENT, EXPORT)}
        print(f"## Reconciliation matching: {meta['statement_rows']:,} statement rows x {meta['hub_records']:,} hub "
              f"records (~{meta['injected_per_class']:,} injected per class)\n")
        print(f"statement {STATEMENT}: {sizes[STATEMENT]:.1f} MiB gzip; hub export {EXPORT}: {sizes[EXPORT]:.1f} MiB gzip\n",
              flush=True)
        columnar = run_child("columnar", directory, args.rows)
        duck = run_child("duckdb", directory, args.rows)
        paired = [(columnar, duck)] + [(run_child("columnar", directory, args.rows), run_child("duckdb", directory, args.rows))
                                       for _ in range(args.pairs - 1)]
        engine = run_child("engine", directory, args.rows)
        pandas = None if args.skip_pandas or args.duckdb_only else run_child("pandas", directory, args.rows)
        dataclasses = None if args.duckdb_only else run_child("dataclasses", directory, args.rows)
        phases = None if args.duckdb_only else run_child("phases", directory, args.rows)
        rows, records = meta["statement_rows"], meta["hub_records"]

        def line(name: str, laps: list[list[float]], count: int, peak: str = "", startup: str = "") -> tuple[str, ...]:
            wall, cpu = sum(lap[0] for lap in laps), sum(lap[1] for lap in laps)
            return name, fmt(wall), fmt(cpu), _rate(count, cpu), peak, startup

        duck_laps = list(duck["laps"].values())
        lines = [
            line("DuckDB engine, end to end: the run's path (match_statement_columnar)", [columnar["laps"]["total"]],
                 rows, fmt(columnar["peak_mb"]), fmt(columnar["startup_mb"])),
            line(f"plain DuckDB: read_csv + read_json + SQL ({DUCKDB_MEMORY}, {DUCKDB_THREADS} threads)", duck_laps,
                 rows, fmt(duck["peak_mb"]), fmt(duck["startup_mb"])),
            line("  read_csv statement", [duck["laps"]["read_statement"]], rows),
            line("  read_json hub export", [duck["laps"]["read_export"]], records),
            line("  join + classify", [duck["laps"]["classify"]], rows),
            line("Python engine, end to end (match_statement)", [engine["laps"]["total"]], rows,
                 fmt(engine["peak_mb"]), fmt(engine["startup_mb"])),
        ]
        engine_only: list[list[float]] = []
        if dataclasses and phases:
            engine_only = [phases["laps"]["index"], phases["laps"]["match"]]
            lines += [
                line("Python engine, end to end on dataclasses (match_day)", [dataclasses["laps"]["total"]], rows,
                     fmt(dataclasses["peak_mb"]), fmt(dataclasses["startup_mb"])),
                line("Python engine by phase: parse statement (tuple rows)", [phases["laps"]["parse"]], rows),
                line("  read hub export (compact tuples)", [phases["laps"]["read"]], records),
                line("  tally rows", [phases["laps"]["tally"]], rows),
                line("  engine only: index records", [phases["laps"]["index"]], records),
                line("  engine only: match rows, finish, sort", [phases["laps"]["match"]], rows),
                line("  engine only: total", engine_only, rows, fmt(phases["peak_mb"]) + " (inputs in lists)",
                     fmt(phases["startup_mb"])),
            ]
        if pandas:
            merge_classify = [pandas["laps"]["merge"], pandas["laps"]["classify"]]
            lines += [
                line("pandas, end to end: read + merge + classify", list(pandas["laps"].values()), rows,
                     fmt(pandas["peak_mb"]), fmt(pandas["startup_mb"])),
                line("  read_csv statement", [pandas["laps"]["read_statement"]], rows),
                line("  read hub export (raw_decode -> DataFrame)", [pandas["laps"]["read_export"]], records),
                line("  merge", [pandas["laps"]["merge"]], rows),
                line("  classify", [pandas["laps"]["classify"]], rows),
                line("  merge + classify (vs engine only)", merge_classify, rows),
            ]
        print(table(["case", "wall s", "CPU s", "rows/s (CPU)", "peak RSS MB", "startup MB"], lines))
        print()
        counted = [("DuckDB engine", columnar), ("plain DuckDB", duck), ("Python engine", engine)] + (
            [("on dataclasses", dataclasses), ("by phase", phases)] if dataclasses and phases else []) + (
            [("pandas", pandas)] if pandas else [])
        class_rows = [(klass, meta["injected_per_class"], *(str(found["classes"][klass]) for _, found in counted))
                      for klass in CLASSES]
        class_rows += [("carried to the pool", "-", *(str(found["carried"]) for _, found in counted)),
                       ("matched", "-", *(str(found["matched"]) for _, found in counted)),
                       ("matched CNY (fen)", "-", *(str(found["matched_amount"].get("CNY", 0)) for _, found in counted))]
        print(table(["difference", "injected", *(name for name, _ in counted)], class_rows))
        agree = all({k: found[k] for k in ("classes", "carried", "matched", "matched_amount")}
                    == {k: engine[k] for k in ("classes", "carried", "matched", "matched_amount")} for _, found in counted)
        print(f"\ncounts {'agree' if agree else 'DIFFER'} between {', '.join(name for name, _ in counted)}")

        def cpu(laps: list[list[float]]) -> float:
            return sum(lap[1] for lap in laps)

        def wall(laps: list[list[float]]) -> float:
            return sum(lap[0] for lap in laps)

        run_path, run_peak = [columnar["laps"]["total"]], columnar["peak_mb"]
        by_wall, by_cpu = wall(duck_laps) / wall(run_path), cpu(duck_laps) / cpu(run_path)
        print(f"VERDICT (DuckDB engine against plain DuckDB, the same files in this run): the run's path took "
              f"{wall(run_path):.1f} s wall / {cpu(run_path):.1f} s CPU against {wall(duck_laps):.1f} s / "
              f"{cpu(duck_laps):.1f} s: {'FASTER' if by_wall >= 1 else 'SLOWER'} by wall ({by_wall:.2f}x), "
              f"{'FASTER' if by_cpu >= 1 else 'SLOWER'} by CPU ({by_cpu:.2f}x); peak {run_peak:.0f} MB against "
              f"{duck['peak_mb']:.0f} MB, {'under' if run_peak < PEAK_BUDGET_MB else 'OVER'} the {PEAK_BUDGET_MB} MB "
              f"budget; {columnar['clean']:,} of {rows:,} rows matched in SQL")
        if len(paired) > 1:
            engine_walls = [wall([run["laps"]["total"]]) for run, _ in paired]
            plain_walls = [wall(list(run["laps"].values())) for _, run in paired]
            ratios = [plain / mine for mine, plain in zip(engine_walls, plain_walls, strict=True)]
            ratio = statistics.median(plain_walls) / statistics.median(engine_walls)
            peaks = [run["peak_mb"] for run, _ in paired]
            print(f"VERDICT over {len(paired)} alternating runs each: median wall {statistics.median(engine_walls):.2f} s "
                  f"against {statistics.median(plain_walls):.2f} s, {'FASTER' if ratio >= 1 else 'SLOWER'} by wall "
                  f"({ratio:.2f}x; per run {', '.join(f'{r:.2f}' for r in ratios)}); the engine's peak "
                  f"{min(peaks):.0f}-{max(peaks):.0f} MB")
        headline, peak = [engine["laps"]["total"]], engine["peak_mb"]
        budget = f"{'under' if peak < PEAK_BUDGET_MB else 'OVER'} the {PEAK_BUDGET_MB} MB budget"
        if pandas and dataclasses:
            pandas_laps = list(pandas["laps"].values())
            print(f"CPU time, pandas / engine: end to end {cpu(pandas_laps) / cpu(headline):.2f}, end to end on "
                  f"dataclasses {cpu(pandas_laps) / cpu([dataclasses['laps']['total']]):.2f}, merge + classify / "
                  f"engine only {cpu(merge_classify) / cpu(engine_only):.2f}; peak RSS, pandas / engine end to end: "
                  f"{pandas['peak_mb'] / peak:.2f}")
            ratio = cpu(pandas_laps) / cpu(headline)
            speed = f"{ratio:.2f}x FASTER than" if ratio > 1 else f"{1 / ratio:.2f}x SLOWER than"
            print(f"VERDICT: the Python engine, end to end, is {speed} pandas end to end: {cpu(headline):.1f} s "
                  f"against {cpu(pandas_laps):.1f} s CPU (wall {wall(headline):.1f} s against {wall(pandas_laps):.1f} s); "
                  f"peak {peak:.0f} MB, {budget}")
        else:
            print(f"the Python engine, end to end, took {cpu(headline):.1f} s CPU "
                  f"(wall {wall(headline):.1f} s); peak {peak:.0f} MB, {budget}")
        print(f"peak RSS of this parent process (a floor under every child's figure): {_peak_mb():.1f} MB")
        print(f"\n(recon_matching.py took {time.perf_counter() - started:.1f} s)")
        return 0 if agree else 1
    finally:
        if not args.data:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
