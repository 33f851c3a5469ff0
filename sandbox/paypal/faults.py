"""Armed misbehaviours, each firing ``count`` times. API faults (``timeout``, ``error_5xx``) match the request path;
webhook faults match the path of the webhook URL. ``path_prefix`` narrows either."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

FaultName = Literal["timeout", "error_5xx", "duplicate_callback", "late", "out_of_order", "forged", "tampered",
                    "stale", "no_callback"]
FAULTS: frozenset[str] = frozenset(get_args(FaultName))
DEFAULT_DELAY_S = {"timeout": 10.0, "late": 5.0, "out_of_order": 5.0}


@dataclass(slots=True)
class Fault:
    fault: FaultName
    remaining: int
    delay_s: float
    path_prefix: str
    copies: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, name: str, count: int = 1, delay_s: float | None = None, path_prefix: str = "",
            copies: int = 3) -> Fault:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(FAULTS)}")
        if count < 1 or copies < 1:
            raise ValueError("count and copies must be >= 1")
        fault = Fault(cast(FaultName, name), count, DEFAULT_DELAY_S.get(name, 0.0) if delay_s is None else delay_s,
                      path_prefix, copies)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[Fault]:
        with self._lock:
            return [Fault(f.fault, f.remaining, f.delay_s, f.path_prefix, f.copies) for f in self._faults]

    def take(self, name: FaultName, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.fault == name and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Fault(fault.fault, 1, fault.delay_s, fault.path_prefix, fault.copies)
            return None
