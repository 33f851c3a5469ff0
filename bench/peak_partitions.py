"""Peak-hour partition load: 100,000 payments a second on one channel account, counted per partition key from
the hub's own key functions (tests/peak_model.py), with the deployed shard counts. Prints the figures that
docs/capacity.md records.

    python bench/peak_partitions.py [--seconds N] [--rate R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.peak_model import CLUSTERS, Profile, hour_bound, simulate  # noqa: E402

SHARDED = {"state/sync": "sync", "state/outbox": "outbox", "state/gsi1": "events", "state/recon": "recon",
           "ledger/value_day": "ledger"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=1)
    parser.add_argument("--rate", type=int, default=100_000)
    args = parser.parse_args()
    profile = Profile(rate=args.rate)
    started = time.perf_counter()
    peak = simulate(profile, args.seconds)
    print(f"peak_partitions: {args.rate} payments/s, {args.seconds} simulated s "
          f"({time.perf_counter() - started:.1f} s wall), shard counts {profile.counts}")
    print(f"  all writes: {peak.total_writes_per_s:,.0f}/s, {peak.total_units_per_s:,.0f} WCU/s")
    print(f"  hottest key: {peak.max_writes.key} {peak.max_writes.per_second:.0f} writes/s; "
          f"most units: {peak.max_units.key} {peak.max_units.per_second:.0f} WCU/s")
    print(f"  {'place':<18}{'keys':>8}{'writes/s':>12}{'WCU/s':>12}{'hottest key':>13}{'hour bound':>12}")
    for place in sorted(peak.keys_by_place):
        keys = peak.keys_by_place[place]
        # the ledger's hot keys: entries, balance and day total of two accounts over the ledger shards (the
        # journals' own keys, one write each, are counted in the mean too, which only raises it)
        shard_keys = 6 * profile.counts.ledger if place == "ledger" else keys
        mean = peak.writes_by_place[place] / shard_keys
        cluster = CLUSTERS.get(place, 1)
        bound = cluster * hour_bound(mean / cluster, shard_keys) if place in SHARDED or place == "ledger" else "-"
        print(f"  {place:<18}{keys:>8}{peak.writes_by_place[place]:>12,.0f}{peak.units_by_place[place]:>12,.0f}"
              f"{peak.mean_writes[place]:>13}{bound!s:>12}")


if __name__ == "__main__":
    main()
