"""Armed misbehaviours; each arming fires ``count`` times and is then used up.

API faults match the request path (``path_prefix`` narrows them): ``timeout`` (the work is done, the answer
is held ``delay_s``), ``error_5xx`` (HTTP 503, nothing done), ``resp_code`` (the work is done but the answer
says ``code`` in ``field``, default respCode; e.g. 03 "timed out" or origRespCode "Q9"), ``file_not_ready``
(the file download answers 98). Callback faults match the backUrl path: ``duplicate_callback`` (``copies``),
``late`` (``delay_s``), ``out_of_order`` (a payment notify waits for its refund's), ``forged`` (signed with a
key UnionPay never had, under UnionPay's certificate), ``tampered`` (a field changed after signing),
``no_callback``. ``stale`` does not apply: ACP notifications carry no freshness timestamp.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

ALIASES = {"late_callback": "late", "forged_callback": "forged", "tampered_callback": "tampered"}
API_FAULTS = frozenset({"timeout", "error_5xx", "resp_code", "file_not_ready"})
CALLBACK_FAULTS = frozenset({"duplicate_callback", "late", "out_of_order", "forged", "tampered", "no_callback"})
DEFAULT_DELAY_S = {"timeout": 10.0, "late": 5.0, "out_of_order": 30.0}


@dataclass(slots=True)
class Fault:
    name: str
    remaining: int
    delay_s: float
    path_prefix: str
    copies: int
    code: str
    field: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, name: str, *, count: int = 1, delay_s: float | None = None, path_prefix: str = "", copies: int = 3,
            code: str = "03", field: str = "respCode") -> Fault:
        name = ALIASES.get(name, name)
        if name == "stale":
            raise ValueError("stale does not apply to UnionPay: ACP notifications carry no timestamp to be stale")
        if name not in API_FAULTS | CALLBACK_FAULTS:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(API_FAULTS | CALLBACK_FAULTS)}")
        if count < 1 or copies < 1:
            raise ValueError("count and copies must be >= 1")
        fault = Fault(name, count, DEFAULT_DELAY_S.get(name, 0.0) if delay_s is None else delay_s, path_prefix, copies,
                      code, field)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, name: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.name == name and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Fault(**{**asdict(fault), "remaining": 1})
            return None

    def armed(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(fault)) for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
