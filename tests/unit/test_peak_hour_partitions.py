"""No hot partition at 100,000 payments a second on one channel account (and one merchant).

The hub's own key functions are driven through a simulated peak second (tests/peak_model.py) with the deployed
shard counts; every write is charged to the partition key it lands on. The worst second of the hour is bounded
from the simulated one by the Poisson tail over every key and second of the hour. DynamoDB serves about 1,000
write units a second per partition key; "a few hundred writes" is the target here.
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from chalicelib.storage import ledger_repo, outbox, shards, sync_index
from tests.peak_model import ABANDONED_SYNC_ROUNDS, CLUSTERS, Peak, Profile, hour_bound, reads_per_shard, simulate

MAX_WRITES_PER_KEY_S = 400  # "a few hundred"
MAX_UNITS_PER_KEY_S = 600  # of DynamoDB's 1,000 write units a second per partition key
SHARDED = {"state/sync": "sync", "state/outbox": "outbox", "state/gsi1": "events", "state/recon": "recon",
           "ledger/value_day": "ledger"}


@pytest.fixture(scope="module")
def peak() -> Peak:
    return simulate(Profile(), seconds=1)


def test_no_key_takes_more_than_a_few_hundred_writes_a_second(peak: Peak) -> None:
    assert peak.total_writes_per_s > 3_000_000  # every step of 100,000 payments was charged
    assert peak.max_writes.per_second <= MAX_WRITES_PER_KEY_S, peak.max_writes
    assert peak.max_units.per_second <= MAX_UNITS_PER_KEY_S, peak.max_units
    for place in ("state/sync", "state/outbox", "state/gsi1", "state/recon", "ledger", "ledger/value_day"):
        assert peak.mean_writes[place] <= MAX_WRITES_PER_KEY_S, (place, peak.mean_writes[place])


def test_the_formerly_single_keys_are_spread_over_every_shard(peak: Peak) -> None:
    counts = Profile().counts
    assert peak.keys_by_place["state/sync"] == counts.sync
    assert peak.keys_by_place["state/outbox"] == counts.outbox
    assert peak.keys_by_place["state/gsi1"] == counts.events
    assert peak.keys_by_place["state/recon"] == counts.recon
    # two ledger accounts (clearing, merchant payable), each over every shard, for entries, balances, day totals
    assert peak.keys_by_place["ledger/value_day"] == 2 * counts.ledger
    clearing = [key for key in peak.keys_by_place if key.startswith("ledger")]
    assert clearing == ["ledger", "ledger/value_day"]


def test_the_worst_second_of_the_hour_stays_under_the_limit(peak: Peak) -> None:
    for place, field in SHARDED.items():
        keys = getattr(Profile().counts, field) * (2 if place.startswith("ledger") else 1)
        mean = peak.writes_by_place[place] / keys
        cluster = CLUSTERS.get(place, 1)
        worst = cluster * hour_bound(mean / cluster, keys)
        assert worst <= MAX_WRITES_PER_KEY_S, (place, mean, worst)
    # the ledger's base-table keys: each account's entries, balance and day total over its shards (6 x 512 keys;
    # the journals' own keys, one write each, are counted in too, which only raises the mean)
    keys = 6 * Profile().counts.ledger
    assert hour_bound(peak.writes_by_place["ledger"] / keys, keys) <= MAX_WRITES_PER_KEY_S


def test_before_sharding_the_same_hour_would_have_put_the_whole_peak_on_one_key() -> None:
    """The anchor: the same model with one shard each is what the hub did (``"0"`` and one ACCT# partition)."""
    single = Profile(rate=2_000, counts=shards.ShardCounts(sync=1, outbox=1, events=1, ledger=1, recon=1))
    before = simulate(single, seconds=1)
    # every payment's sync writes on one key: 2,000 payments already take it past 1,000 writes a second
    assert before.mean_writes["state/sync"] > 1_000
    assert before.mean_writes["ledger"] > 1_000  # a clearing entry per paid payment on one ACCT# partition


def test_the_simulation_uses_the_hubs_own_keys() -> None:
    counts = Profile().counts
    item = outbox.event_item(merchant_id="mch_1", object_id="pay_1", event_type="payment.succeeded", data={},
                             now="2024-11-11T12:00:00.000Z", counts=counts)
    assert item["gsi1pk"] == f"MERCHANT#mch_1#EVENTS#{shards.shard_of(item['event_id'], counts.events)}"
    assert item["outbox_shard"] == shards.shard_of(item["event_id"], counts.outbox)
    sync = sync_index.first_sync(datetime(2024, 11, 11), "att_1", count=counts.sync)
    assert sync["sync_shard"] == shards.shard_of("att_1", counts.sync)
    assert ABANDONED_SYNC_ROUNDS == 9


def test_reads_visit_every_shard_a_bounded_number_of_times() -> None:
    counts = Profile().counts
    # at peak, 20 % of a minute's 6,000,000 attempts are due for a query in any minute
    reads = reads_per_shard(counts, due_per_minute=0.2 * 6_000_000 * (1 + ABANDONED_SYNC_ROUNDS * 0.08))
    assert reads["sync_sweep_queries_per_shard_per_s"] == pytest.approx(1 / 60)
    # a due item read is ~1 KB: well under the 3,000 read units a second a partition key serves
    assert reads["sync_sweep_items_per_shard_per_s"] < 3_000 / 4
    assert reads["balance_read_items"] == counts.ledger and reads["balance_read_calls"] == math.ceil(counts.ledger / 100)
    assert ledger_repo.BATCH_GET_MAX == 100
