"""The ReconShards functions on the local stack (moto S3, the provisioned WeChat Pay account): split a day into
shards, match each shard, combine; the day's result equals the one-process engine's on the same files."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections import Counter
from datetime import date
from typing import Any

from chalicelib.recon import statement_store
from chalicelib.storage.aws import client

DAY = date(2024, 5, 19)
HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
          "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率")


def _line(n: int, amount: str, state: str = "SUCCESS") -> str:
    cells = [f"2024-05-19 {n % 24:02d}:{n % 60:02d}:00", "wx", "1900000109", "0", "", f"42000{n:05d}", f"att_{n}",
             "o", "JSAPI", state, "OTHERS", "CNY", amount, "0.00", "0", "0", "0.00", "0.00", "", "", "卡", "", "0.00000",
             "0.60%"]
    return ",".join("`" + cell for cell in cells)


def _day(account_id: str) -> tuple[bytes, bytes, int]:
    lines, items = [HEADER], []
    total = 0
    for n in range(1, 61):
        amount = 100 + n
        row_amount = amount + (1 if n % 7 == 0 else 0)  # an amount difference every 7th
        if n % 11 != 0:  # every 11th only in the hub
            lines.append(_line(n, f"{row_amount // 100}.{row_amount % 100:02d}"))
            total += row_amount
        if n % 13 != 0:  # every 13th only on the statement
            items.append({"Item": {"recon_pk": {"S": f"{account_id}#{DAY}"}, "recon_sk": {"S": f"payment#att_{n}"},
                                   "amount": {"N": str(amount)}, "currency": {"S": "CNY"},
                                   "status": {"S": "succeeded"}, "recon_at": {"S": "2024-05-19T04:00:00.000Z"},
                                   "channel_transaction_id": {"S": f"42000{n:05d}"}}})
    rows = len(lines) - 1
    lines += ["总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额",
              f"`{rows},`{total // 100}.{total % 100:02d},`0.00,`0.00,`0.00000"]
    bill = gzip.compress(("\r\n".join(lines) + "\r\n").encode())
    export = gzip.compress(("\n".join(json.dumps(item) for item in items) + "\n").encode())
    return bill, export, rows


def test_a_day_as_shards_through_the_four_functions_completes_the_run_as_one_process_would(stack: Any) -> None:
    from chalicelib.config.accounts import ChannelAccount
    from chalicelib.recon import repo
    from chalicelib.recon.model import DiscrepancyKind
    from chalicelib.recon.run import match_statement_columnar
    from chalicelib.recon.tally import Tally
    from chalicelib.storage import config_repo
    from functions import recon_shards

    bill, export, rows = _day(stack.account_id)
    s3, bucket = client("s3"), statement_store.bucket()
    s3.put_object(Bucket=bucket, Key="shard-test/statement.csv.gz", Body=bill)
    # a DynamoDB export writes several data files: the items split over two
    lines = gzip.decompress(export).decode().splitlines()
    for number, half in enumerate((lines[: len(lines) // 2], lines[len(lines) // 2 :])):
        s3.put_object(Bucket=bucket, Key=f"shard-test/export/data/part-{number}.json.gz",
                      Body=gzip.compress(("\n".join(half) + "\n").encode()))
    event = {"account_id": stack.account_id, "day": DAY.isoformat(), "execution": "test-1",
             "statement_key": "shard-test/statement.csv.gz",
             "export_keys": [f"shard-test/export/data/part-{number}.json.gz" for number in range(2)],
             "shards": 3, "part_lines": 25}

    state = recon_shards.plan(event, None)  # what the state machine passes from step to step
    assert [part["side"] for part in state["parts"]].count("statement") == 3  # 64 lines in parts of 25
    assert len(state["shards"]) == 3
    partitioned = [recon_shards.partition(part, None) for part in state["parts"]]
    matched = [recon_shards.match(item, None) for item in state["shards"]]
    outcome = recon_shards.combine({**state, "partitioned": partitioned}, None)

    account = config_repo.channel_account(stack.account_id)
    assert isinstance(account, ChannelAccount)
    with tempfile.TemporaryDirectory() as directory:
        paths = [os.path.join(directory, name) for name in ("statement.csv.gz", "export.json.gz")]
        for path, body in zip(paths, (bill, export), strict=True):
            with open(path, "wb") as out:
                out.write(body)
        whole = match_statement_columnar(account, DAY, paths[0], [paths[1]], tally=Tally())
    assert outcome["status"] == "completed"
    assert outcome["matched"] == whole.matched == sum(shard["matched"] for shard in matched)
    assert outcome["discrepancies"] == len(whole.discrepancies) > 0
    run = repo.get_run(stack.account_id, DAY)
    assert run is not None and run["status"] == "completed"
    assert run["totals"]["statement_rows"] == rows and run["totals"]["matched"] == whole.matched
    items = repo.items(run["run_id"])
    kinds = Counter(str(item["kind"]) for item in items.values())
    assert {"amount", "hub_only", "channel_only"} <= set(kinds)
    assert sum(kinds[str(kind)] for kind in DiscrepancyKind) == len(whole.discrepancies)
