"""Listing latency with a million payments of one merchant in moto: first page and a deep page, p50/p95.

    python bench/listing.py [--payments 1000000] [--samples 15] [--limit 20]

Loading a million items through moto's HTTP server takes hours here, so the hub runs in-process under moto's
``mock_aws`` and the payments are put straight into moto's table object (the same item ``records.payment_item``
makes for a real create, listing keys included); the reads then go through boto3 and moto's request handling
as in the tests. moto 5.2.5 on its own answers a GSI query by walking every item of the table (minutes per page
at a million), so the bench applies the local moto fixes (infra/local/moto_patches.py, the same ``start_moto``
applies), whose partition map (infra/local/moto_index.py) hands moto's query only the index partition's
candidates. The latencies are still moto's and Python's, in one process; what carries over to DynamoDB is the
work per page, printed beside them: queries sent (one per shard, plus refills) and batch gets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import fmt, table  # noqa: E402

os.environ.setdefault("PAYHUB_STAGE", "local")
os.environ.setdefault("AWS_DEFAULT_REGION", "ap-east-1")
for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(name, "testing")
os.environ.pop("AWS_ENDPOINT_URL", None)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# Attributes whose values repeat across the bench's payments: one moto value object each, shared, not a million.
_SHARED = frozenset({"sk", "merchant_id", "amount", "currency", "description", "method", "status", "version",
                     "payer", "metadata", "amount_captured", "amount_refunded", "amount_refund_pending",
                     "amount_refundable", "list_pk"})


def direct_loader(table: Any) -> Callable[[dict[str, Any]], None]:
    """Puts an item (DynamoDB JSON) straight into moto's table object, as PutItem would store it.

    moto's own ``Item`` re-sums the size of the whole item for each attribute it sets (quadratic in attributes,
    about 1 ms an item here) and holds a value object per attribute (some 10 GB for a million payments); the
    bench has no use for either, so it builds the same ``Item`` without the per-attribute size check and shares
    the value objects of attributes that repeat. The first items are checked against moto's own construction.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    shared: dict[tuple[str, str], DynamoType] = {}
    checked = 0

    def load(raw: dict[str, Any]) -> None:
        nonlocal checked
        attrs = LimitedSizeDict()
        values = {}
        for name, value in raw.items():
            if name in _SHARED:
                key = (name, json.dumps(value, sort_keys=True))
                values[name] = shared.get(key) or shared.setdefault(key, DynamoType(value))
            else:
                values[name] = DynamoType(value)
        dict.update(attrs, values)  # no per-attribute size re-check: these items are well under 400 KB
        item = object.__new__(Item)
        item.hash_key, item.range_key, item.attrs = values["pk"], values["sk"], attrs
        if checked < 100:
            assert item.to_json() == Item(item.hash_key, item.range_key, raw).to_json()
            checked += 1
        table.items[item.hash_key][item.range_key] = item

    return load


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--moto-as-released", action="store_true",
                        help="the anchor: no local moto fixes, every index Query walks the table (use ~20,000)")
    args = parser.parse_args()

    from moto import mock_aws

    from infra.local import moto_patches

    if not args.moto_as_released and not moto_patches.apply():
        raise SystemExit("the local moto fixes do not apply to this moto version: a page would walk the whole table")
    with mock_aws():
        run(args)


def run(args: argparse.Namespace) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib.bills import listing
    from chalicelib.config.settings import settings
    from chalicelib.domain.clock import iso
    from chalicelib.domain.models import Merchant, Payment
    from chalicelib.domain.states import PaymentState
    from chalicelib.storage import records, shards
    from chalicelib.storage.aws import client
    from chalicelib.storage.codec import to_item
    from infra.local.bootstrap import create_stage_resources

    create_stage_resources("local")
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings().region]
    state = backend.get_table(settings().names.state_table)
    merchant = Merchant("mch_bench", "Bench")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    methods = ("wechat.native", "alipay.qr", "unionpay.gateway", "stripe.card")
    statuses = (PaymentState.SUCCEEDED, PaymentState.SUCCEEDED, PaymentState.SUCCEEDED, PaymentState.CLOSED)
    load = direct_loader(state)
    began = time.perf_counter()
    for n in range(args.payments):
        at = iso(start + timedelta(seconds=n * 2.5))
        payment = Payment(f"pay_{n:024d}", merchant.merchant_id, f"o{n}", 100 + n % 5000, "CNY", "bench",
                          methods[n % 4], statuses[n % 4], 1, at, at, at)
        load(to_item(records.payment_item(payment)))
    loaded_s = time.perf_counter() - began
    print(f"loaded {args.payments:,} payments straight into moto's table object (in-process) in {loaded_s:.0f} s "
          f"({shards.counts().listing} listing shards)", file=sys.stderr)

    calls = {"Query": 0, "BatchGetItem": 0}
    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.__setitem__(
        model.name, calls.get(model.name, 0) + 1))

    def timed(params: dict[str, str]) -> tuple[float, int, int]:
        before = dict(calls)
        began = time.perf_counter()
        page = listing.list_page(merchant, "payment", params)
        elapsed = (time.perf_counter() - began) * 1000
        assert len(page.data) == args.limit and page.next_cursor
        return elapsed, calls["Query"] - before["Query"], calls["BatchGetItem"] - before["BatchGetItem"]

    # a deep page: half way down the list (the cursor a client would hold after 25,000 pages of 20)
    middle = args.payments // 2
    middle_at = iso(start + timedelta(seconds=middle * 2.5))
    deep_cursor = listing._make_cursor(merchant.merchant_id, listing.parse_filters("payment", {}),
                                       f"{middle_at}#pay_{middle:024d}")
    day = int(args.payments * 2.5 / 86400) // 2  # a day in the middle of the data
    cases = {
        "first page": {"limit": str(args.limit)},
        "deep page (middle)": {"limit": str(args.limit), "cursor": deep_cursor},
        "first page, status=closed": {"limit": str(args.limit), "status": "closed"},
        "first page, one day, channel": {"limit": str(args.limit), "channel": "alipay",
                                         "created_from": iso(start + timedelta(days=day)),
                                         "created_to": iso(start + timedelta(days=day + 1))},
    }
    began = time.perf_counter()
    listing.list_page(merchant, "payment", {"limit": str(args.limit)})  # builds moto's partition map once
    built_s = time.perf_counter() - began
    rows = []
    for name, params in cases.items():
        timed(params)  # warm-up (the signing key, boto3's first call)
        samples = [timed(params) for _ in range(args.samples)]
        latencies = [s[0] for s in samples]
        rows.append((name, fmt(percentile(latencies, 0.5)), fmt(percentile(latencies, 0.95)),
                     samples[-1][1], samples[-1][2]))
    print(table((f"page of {args.limit}, {args.payments:,} payments in moto", "p50 ms", "p95 ms",
                 "queries", "batch gets"), rows))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first = "first query" if args.moto_as_released else "first query (moto builds its partition map)"
    print(f"{'moto as released' if args.moto_as_released else 'with infra/local/moto_index.py'}: "
          f"load {loaded_s:.0f} s, {first} {built_s:.1f} s, "
          f"peak memory {peak_mib:,.0f} MiB, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
