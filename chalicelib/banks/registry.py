"""Bank name -> adapter. One adapter per bank per process, sharing the channels' HTTP transport."""

from __future__ import annotations

import importlib
from functools import cache

from chalicelib.banks.base import BankAdapter
from chalicelib.domain.errors import InvalidRequest

# "module:Class"; the class takes the transport. Imported lazily: a function pays only for the banks it uses.
BANKS: dict[str, str] = {
    "cmb": "chalicelib.banks.cmb.adapter:CMBAdapter",
}


@cache
def adapter_for(bank: str) -> BankAdapter:
    target = BANKS.get(bank)
    if target is None:
        raise InvalidRequest(f"bank must be one of {sorted(BANKS)}, not {bank!r}")
    module, cls = target.split(":")
    from chalicelib.channels.transport import UrllibTransport

    adapter: BankAdapter = getattr(importlib.import_module(module), cls)(UrllibTransport())
    return adapter
