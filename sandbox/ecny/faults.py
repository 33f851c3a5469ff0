"""Armed misbehaviours; each arming fires ``count`` times and is then used up.

API faults (``timeout``, ``error_5xx``) match the gateway path; notification faults match the path of the
notify URL. ``path_prefix`` narrows either. Names follow the sandbox control contract; the WeChat sandbox's
longer spellings (``late_callback``, ``forged_callback``...) are accepted as aliases.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

API_FAULTS = frozenset({"timeout", "error_5xx"})
NOTIFY_FAULTS = frozenset({"duplicate_callback", "late", "out_of_order", "forged", "tampered", "stale", "no_callback"})
ALIASES = {"late_callback": "late", "forged_callback": "forged", "tampered_callback": "tampered",
           "stale_callback": "stale", "duplicate": "duplicate_callback"}
DEFAULT_DELAY_S = {"timeout": 10.0, "late": 5.0, "out_of_order": 30.0}
DEFAULT_COPIES = 3


@dataclass(slots=True)
class Fault:
    fault: str
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
            copies: int = DEFAULT_COPIES) -> Fault:
        name = ALIASES.get(name, name)
        if name not in API_FAULTS | NOTIFY_FAULTS:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(API_FAULTS | NOTIFY_FAULTS)}")
        if count < 1 or copies < 1:
            raise ValueError("count and copies must be >= 1")
        fault = Fault(name, count, DEFAULT_DELAY_S.get(name, 0.0) if delay_s is None else delay_s, path_prefix, copies)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[Fault]:
        with self._lock:
            return [Fault(f.fault, f.remaining, f.delay_s, f.path_prefix, f.copies) for f in self._faults]

    def take(self, name: str, path: str) -> Fault | None:
        """Use one firing of the first armed ``name`` fault matching ``path``; None when none is armed."""
        with self._lock:
            for fault in self._faults:
                if fault.fault == name and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Fault(fault.fault, 1, fault.delay_s, fault.path_prefix, fault.copies)
            return None
