"""Armed misbehaviours. Each arming fires ``count`` times and is then used up.

Gateway faults (``timeout``, ``error_5xx``, ``system_error``) match a prefix of the Alipay method called
(``match``: e.g. ``alipay.trade.refund``); notify faults match a prefix of the notify URL's path. Without
``match`` the next eligible call fires. Alipay's notifies carry no timestamp window, so there is no ``stale``.

Statement faults change how one day's bill is rendered, never the ledger it is rendered from.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

GATEWAY_FAULTS = frozenset({"timeout", "error_5xx", "system_error"})
NOTIFY_FAULTS = frozenset({"duplicate_callback", "late", "out_of_order", "forged", "tampered", "no_callback"})
ALIASES = {"late_callback": "late", "forged_callback": "forged", "tampered_callback": "tampered"}
DEFAULT_DELAY_S = {"timeout": 10.0, "late": 5.0, "out_of_order": 30.0}
DEFAULT_COPIES = 3
STATEMENT_KINDS = frozenset({"drop_row", "extra_row", "amount", "currency", "status", "fee", "duplicate_row", "corrupt"})


@dataclass(slots=True)
class Fault:
    fault: str
    remaining: int
    delay_s: float
    match: str
    copies: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, name: str, *, count: int = 1, delay_s: float | None = None, match: str = "",
            copies: int = DEFAULT_COPIES) -> Fault:
        fault_name = ALIASES.get(name, name)
        if fault_name == "stale":
            raise ValueError("Alipay notifies have no timestamp window, so a stale notify is not a fault here")
        if fault_name not in GATEWAY_FAULTS | NOTIFY_FAULTS:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(GATEWAY_FAULTS | NOTIFY_FAULTS)}")
        if count < 1 or copies < 1:
            raise ValueError("count and copies must be >= 1")
        fault = Fault(fault_name, count, DEFAULT_DELAY_S.get(fault_name, 0.0) if delay_s is None else delay_s, match,
                      copies)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, name: str, subject: str) -> Fault | None:
        """Consume one firing of the first armed ``name`` fault whose ``match`` prefixes ``subject``."""
        with self._lock:
            for fault in self._faults:
                if fault.fault == name and subject.startswith(fault.match):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Fault(fault.fault, 1, fault.delay_s, fault.match, fault.copies)
            return None

    def armed(self) -> list[Fault]:
        with self._lock:
            return [Fault(f.fault, f.remaining, f.delay_s, f.match, f.copies) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


@dataclass(frozen=True, slots=True)
class StatementFault:
    day: str  # YYYY-MM-DD, Beijing
    kind: str
    out_trade_no: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # delta, currency, status, fee, amount, out_request_no

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, "kind": self.kind, "out_trade_no": self.out_trade_no, **self.options}


class StatementFaultBook:
    def __init__(self) -> None:
        self._faults: list[StatementFault] = []
        self._lock = threading.Lock()

    def add(self, fault: StatementFault) -> None:
        with self._lock:
            self._faults.append(fault)

    def for_day(self, day: str) -> list[StatementFault]:
        with self._lock:
            return [f for f in self._faults if f.day == day]

    def all(self) -> list[StatementFault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
