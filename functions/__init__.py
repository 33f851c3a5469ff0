"""Lambda entry points: thin edges that parse, call one core function and map the result.

In a Lambda container (``AWS_LAMBDA_FUNCTION_NAME`` is set) the cyclic garbage collector is paused while the
handler module is imported. An import builds only objects that live as long as the container (modules,
classes, functions), yet the growing heap triggers full collections that walk all of them again: 20-40 ms of
CPU per cold start (docs/cold-start.md). Each handler module ends its import with ``imported()``, which moves
what the import built out of every future collection and turns the collector back on;
tests/unit/test_function_imports.py checks that every deployed handler does. Elsewhere (tests, the local
stack) nothing changes.
"""

from __future__ import annotations

import gc
import os

_IN_LAMBDA = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
if _IN_LAMBDA:
    gc.disable()
    # The first pydantic model built (the OpenAPI document's route builds them) looks for pydantic plugins by reading
    # the metadata of every installed distribution (~5-7 ms of CPU). The hub ships none; a deployment that adds one
    # sets the variable itself.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def imported() -> None:
    """The handler module is imported: freeze what it built, collect again from here on."""
    if _IN_LAMBDA and not gc.isenabled():
        gc.freeze()
        gc.enable()
