"""Small helpers shared by the benchmark scripts: repo root on sys.path, table printing, statistics."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, align_left: int = 1) -> str:
    """A plain-text table; the first ``align_left`` columns are left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (c.ljust(w) if i < align_left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(padded)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def calibrate(fn: Callable[[], object], target_s: float) -> int:
    """How many calls of ``fn`` make one run last about ``target_s`` (after one warm-up call)."""
    fn()
    number = 1
    while True:
        started = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - started
        if elapsed >= target_s / 4:
            return max(1, int(number * target_s / elapsed))
        number *= 4
