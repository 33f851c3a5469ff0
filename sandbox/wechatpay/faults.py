"""Armed misbehaviours. Each arming fires ``count`` times and is then used up.

API faults (``timeout``, ``error_5xx``) match on the request path; callback faults match on the path of the
notify_url the callback goes to. ``path_prefix`` narrows either; without it the next eligible call fires.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

FaultMode = Literal[
    "timeout", "error_5xx", "duplicate_callback", "late_callback", "out_of_order", "forged_callback",
    "tampered_callback", "stale_callback", "no_callback",
]
FAULT_MODES: frozenset[str] = frozenset(get_args(FaultMode))
API_FAULTS: frozenset[str] = frozenset({"timeout", "error_5xx"})

DEFAULT_DELAY_S: dict[str, float] = {
    "timeout": 10.0,  # longer than any sane client timeout (the hub's is a few seconds)
    "late_callback": 5.0,
    "out_of_order": 30.0,  # how long a payment callback waits for its refund before going out anyway
}
DEFAULT_DUPLICATE_COPIES = 3


@dataclass(slots=True)
class Fault:
    mode: FaultMode
    remaining: int
    delay_s: float
    path_prefix: str
    copies: int  # duplicate_callback only: how many concurrent copies of each callback

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, mode: str, count: int = 1, delay_s: float | None = None, path_prefix: str = "",
            copies: int = DEFAULT_DUPLICATE_COPIES) -> Fault:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {sorted(FAULT_MODES)}")
        if count < 1 or copies < 1:
            raise ValueError("count and copies must be >= 1")
        delay = DEFAULT_DELAY_S.get(mode, 0.0) if delay_s is None else delay_s
        fault = Fault(cast(FaultMode, mode), count, delay, path_prefix, copies)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[Fault]:
        with self._lock:
            return [Fault(f.mode, f.remaining, f.delay_s, f.path_prefix, f.copies) for f in self._faults]

    def take(self, mode: FaultMode, path: str) -> Fault | None:
        """Consume one firing of the first armed ``mode`` fault matching ``path``; None when none is armed."""
        with self._lock:
            for fault in self._faults:
                if fault.mode == mode and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Fault(fault.mode, 1, fault.delay_s, fault.path_prefix, fault.copies)
            return None
