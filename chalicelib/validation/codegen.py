"""Writes the core schema pydantic builds for each ``BaseModel`` into a generated module a ``LightModel`` runs.

    python -m chalicelib.validation.codegen          # rewrite every generated module
    python -m chalicelib.validation.codegen --check  # exit 1 when one is stale

The schema is taken as pydantic generated it (constraints, defaults, strictness, validators, error titles), with
three changes: the model classes it instantiates are the light classes of the same name; the ``ref`` names lose
the memory address pydantic appends; ``metadata`` (JSON Schema hooks, which validation never reads) is dropped.
Every function the schema calls must be a module-level function of a module that loads no pydantic model, since
the generated module imports it by name; anything else is refused here rather than generated wrong.
``tests/unit/validation/test_generated_schemas.py`` fails when a generated module differs from what this writes.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from chalicelib.domain.value_class import value_class

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 120


@value_class
class Target:
    models: str  # the module of the BaseModels (the source of truth)
    light: str  # the module of the LightModel classes of the same names
    generated: str  # the module written here
    names: tuple[str, ...]  # the models a light class stands for


TARGETS = (
    Target("chalicelib.service.input_models", "chalicelib.service.inputs", "chalicelib.service.input_schemas",
           ("PayerInput", "CardInput", "InstalmentsInput", "CreatePaymentInput", "CreateRefundInput", "ConfirmPaymentInput",
            "StartStepUpInput", "VerifyStepUpInput", "RegisterAuthenticatorInput")),
    Target("chalicelib.checkout.input_models", "chalicelib.checkout.inputs", "chalicelib.checkout.input_schemas",
           ("SupportContactInput", "CreateCheckoutSessionInput")),
    Target("chalicelib.invoices.input_models", "chalicelib.invoices.inputs", "chalicelib.invoices.input_schemas",
           ("BuyerInput", "LineInput", "CreateInvoiceInput", "ReverseInvoiceInput")),
    Target("chalicelib.service.operator_input_models", "chalicelib.service.operator_inputs",
           "chalicelib.service.operator_input_schemas", ("CreateApiKeyInput", "RotateInput", "WebhookSecretRotateInput")),
    Target("chalicelib.routing.rule_models", "chalicelib.routing.rules", "chalicelib.routing.rule_schemas",
           ("Candidate", "Gray", "Rule", "Failover", "RoutingRules", "StoredRouting")),
    Target("chalicelib.routing.method_definition_model", "chalicelib.routing.method_definition",
           "chalicelib.routing.method_definition_schema", ("MethodDefinition",)),
    Target("chalicelib.config.account_model", "chalicelib.config.accounts", "chalicelib.config.account_schema",
           ("ChannelAccountConfig",)),
)


class _Name:
    """A name in the generated module, printed bare."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _Writer:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.models = importlib.import_module(target.models)
        self.imports: dict[tuple[str, str], str] = {}
        self.classes: dict[str, set[str]] = {}  # light module -> the classes imported from it

    def _model_name(self, cls: type) -> str:
        name = cls.__name__
        for target in TARGETS:  # a model may nest another target's (the checkout session's payer)
            if cls.__module__ == target.models and name in target.names:
                self.classes.setdefault(target.light, set()).add(name)
                return name
        raise ValueError(f"{cls!r} is not one of the models listed in TARGETS")

    def _function(self, function: Any) -> _Name:
        module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
        if not inspect.isfunction(function) or "." in name or "<" in name or not module:
            raise ValueError(f"{function!r}: a validator must be a module-level function (the schema imports it)")
        if module == self.target.models or module.startswith("pydantic"):
            raise ValueError(f"{function!r} lives in {module}, which the light classes must not import")
        alias = self.imports.setdefault((module, name), f"_{name.lstrip('_')}")
        if list(self.imports.values()).count(alias) > 1:
            raise ValueError(f"two validators named {name}")
        return _Name(alias)

    def convert(self, value: Any, key: str = "") -> Any:
        from pydantic import BaseModel

        if key == "default":  # a field's default is a value, not schema: written as it is, or refused
            return self._literal(value)
        if isinstance(value, dict):
            if key == "fields":  # field names, one of which may be "metadata"
                return {k: self.convert(v) for k, v in value.items()}
            return {k: self.convert(v, k) for k, v in value.items() if k != "metadata"}
        if isinstance(value, list | tuple):
            return type(value)(self.convert(v) for v in value)
        if isinstance(value, type) and issubclass(value, BaseModel):
            return _Name(self._model_name(value))
        if key in ("ref", "schema_ref") and isinstance(value, str):
            return value.rsplit(":", 1)[0].rsplit(".", 1)[-1]  # "pkg.mod.Model:1403..." -> "Model"
        if value in (dict, list, tuple):  # a default factory
            return _Name(value.__name__)
        if callable(value):
            return self._function(value)
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise ValueError(f"cannot write {value!r} ({type(value).__name__}) in a generated schema")

    def _literal(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list | tuple) and all(v is None or isinstance(v, bool | int | float | str) for v in value):
            return value
        raise ValueError(f"default {value!r}: only scalars and flat sequences of them are written as defaults "
                         "(use a default_factory)")

    def render(self) -> str:
        from pydantic._internal._config import ConfigWrapper

        schemas: dict[str, Any] = {}
        configs: dict[str, Any] = {}
        hidden: dict[str, tuple[str, ...]] = {}
        for name in self.target.names:
            model = getattr(self.models, name)
            model.model_rebuild()
            schemas[name] = self.convert(model.__pydantic_core_schema__)
            # what BaseModel gives its validator besides the schema: the error title, at least
            configs[name] = self.convert(dict(ConfigWrapper(model.model_config).core_config(title=name)))
            hidden_fields = tuple(f for f, info in model.model_fields.items() if not info.repr)
            if hidden_fields:
                hidden[name] = hidden_fields
        lines = [
            f'"""Generated by `python -m chalicelib.validation.codegen` from {self.target.models}: do not edit.',
            "",
            "The core schemas pydantic builds for those models, run by the light classes of the same names in",
            f"{self.target.light} (chalicelib/validation/light.py); tests fail when this is stale.",
            '"""',
            "",
            "# ruff: noqa: E501",
            "from __future__ import annotations",
            "",
            "from typing import Any",
            "",
        ]
        imports = [(module, name, f"from {module} import {name} as {alias}")
                   for (module, name), alias in self.imports.items()]
        for module, names in self.classes.items():
            line = f"from {module} import {', '.join(sorted(names))}"
            if len(line) > 130:  # as ruff's isort writes it
                line = "\n".join([f"from {module} import (", *(f"    {n}," for n in sorted(names)), ")"])
            imports.append((module, "", line))
        lines += [line for _, _, line in sorted(imports)]
        lines += ["", f"SCHEMAS: dict[str, Any] = {_format(schemas, 0)}", "",
                  f"# The validator's configuration, as BaseModel gives it (the error title).\nCONFIGS: dict[str, Any] = "
                  f"{_format(configs, 0)}", "",
                  f"# Fields a repr leaves out (Field(repr=False)): card data and codes.\nHIDDEN: dict[str, tuple[str, ...]] = "
                  f"{_format(hidden, 0)}", ""]
        return "\n".join(lines)


def _format(value: Any, indent: int) -> str:
    """``repr`` of ``value``, broken one item a line where it would not fit."""
    flat = repr(value)
    if len(flat) + indent <= WIDTH or not isinstance(value, dict | list | tuple) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{k!r}: {_format(v, indent + 4)}," for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        items = [f"{pad}{_format(v, indent + 4)}," for v in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    return "\n".join([opening, *items, " " * indent + closing])


def path_of(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def render(target: Target) -> str:
    return _Writer(target).render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated module is stale")
    args = parser.parse_args(argv)
    stale = []
    for target in TARGETS:
        text, path = render(target), path_of(target.generated)
        if not path.exists() or path.read_text() != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(text)
    if stale:
        print(("stale: " if args.check else "written: ") + ", ".join(stale), file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
