"""Armed misbehaviours. Each arming fires ``count`` times and is then used up.

API faults (``timeout``, ``error_5xx``) match on the request path (``path_prefix``). Webhook faults match on
the endpoint URL's path (``path_prefix``) and, if given, on the event type (``event_type``: exact, or a prefix
ending in ``.`` such as ``refund.``). ``error_5xx`` with ``stored: true`` is a 500 Stripe gives *after* it started
working on the request: it is kept under the Idempotency-Key and replayed to retries.

Names follow the shared control API (``late``, ``forged``, ``tampered``, ``stale``, ``duplicate_callback``...); the
WeChat sandbox's longer names (``late_callback``...) are accepted too.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

FAULTS = frozenset({"timeout", "error_5xx", "duplicate_callback", "late", "out_of_order", "forged", "tampered",
                    "stale", "no_callback"})
ALIASES = {"late_callback": "late", "forged_callback": "forged", "tampered_callback": "tampered",
           "stale_callback": "stale", "duplicate": "duplicate_callback"}
API_FAULTS = frozenset({"timeout", "error_5xx"})
DEFAULT_DELAY_S = {"timeout": 30.0, "late": 5.0, "out_of_order": 30.0}
DEFAULT_COPIES = 3


@dataclass(slots=True)
class Fault:
    fault: str
    remaining: int
    delay_s: float
    path_prefix: str
    event_type: str
    copies: int
    stored: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, path: str, event_type: str | None) -> bool:
        if not path.startswith(self.path_prefix):
            return False
        if not self.event_type or event_type is None:
            return True
        wanted = self.event_type
        return event_type.startswith(wanted) if wanted.endswith(".") else event_type == wanted


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, name: str, *, count: int = 1, delay_s: float | None = None, path_prefix: str = "",
            event_type: str = "", copies: int = DEFAULT_COPIES, stored: bool = False) -> Fault:
        fault_name = canonical(name)
        if fault_name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(FAULTS)}")
        if count < 1 or copies < 1:
            raise ValueError("count and copies must be >= 1")
        delay = DEFAULT_DELAY_S.get(fault_name, 0.0) if delay_s is None else delay_s
        fault = Fault(fault_name, count, delay, path_prefix, event_type, copies, stored)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(f)) for f in self._faults]

    def take(self, name: str, path: str, event_type: str | None = None) -> Fault | None:
        """Use one firing of the first armed ``name`` fault matching; None when none is armed."""
        with self._lock:
            for fault in self._faults:
                if fault.fault == name and fault.matches(path, event_type):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Fault(**{**asdict(fault), "remaining": 1})
            return None
