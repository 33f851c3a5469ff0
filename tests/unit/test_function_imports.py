"""No function imports a library it cannot use: what each deployed handler loads at cold start, checked (untimed).

Every handler of ``infra.functions`` (the table the template is built from) is imported in a fresh interpreter
with a Lambda-like environment, and the modules it left in ``sys.modules`` are held against what that
function's declared access lets it do. What a function pays at cold start is measured, not tested, by
``bench/cold_start.py``; this test keeps the causes of a slow start from coming back.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from infra.functions import ROUTE_GROUPS, WORKERS, WRITE, Access

ROOT = Path(__file__).resolve().parents[2]

# The card vault's ciphers and key service: only a function with rights on the card-vault key can use them.
# Settling an attempt deletes its card record, which needs none of this (chalicelib/vault/card_records.py).
VAULT = ("chalicelib.vault.cards", "chalicelib.vault.envelope", "chalicelib.vault.keys")
# Channel protocols and the SM2 library behind them: deferred to the first request that talks to a channel
# (chalicelib/channels/registry.py), and never loaded by a function holding no channel secret.
CHANNEL_CODE = ("chalicelib.crypto.sm", "chalicelib.channels.wechatpay", "chalicelib.channels.alipay",
                "chalicelib.channels.unionpay", "chalicelib.channels.ecny", "chalicelib.channels.stripe",
                "chalicelib.channels.paypal")
SM2_LIBRARIES = ("gmssl", "Cryptodome")  # what chalicelib.crypto.sm and the vault's old import chain pulled in
# pydantic's model machinery (BaseModel and the schema generator behind it, ~30 ms of CPU for the first model: the whole
# cold-start budget): no function loads it, on import or on its first request. Request bodies, routing rules and
# configured methods are validated by pydantic-core running the core schemas generated from the pydantic models
# (chalicelib/validation), channel accounts included (chalicelib/config/accounts.py); only the route serving the OpenAPI
# document builds the models. pydantic's package itself is imported by nothing at cold start either; pydantic-core
# loads it (``pydantic.version``, for the errors' links) when it first reports an invalid document.
PYDANTIC = ("pydantic",)
PYDANTIC_MODELS = ("pydantic.main", "pydantic.fields", "pydantic._internal._model_construction",
                   "pydantic._internal._generate_schema")
PYDANTIC_CORE = ("pydantic_core",)
# Routing rules and configured methods: a create's routing, never what settles a payment.
ROUTING_MODELS = ("chalicelib.routing.rules", "chalicelib.routing.method_definition")
# The routing decision and its breaker counters: what creates payments (functions taking bodies) routes; what
# settles, refunds or reconciles one only finds its account (chalicelib/service/routing.py).
ROUTING_DECISION = ("chalicelib.routing.decide", "chalicelib.routing.health")
# The merchant API's request models: merchant POSTs (the functions writing idempotency keys) only.
MERCHANT_INPUTS = ("chalicelib.service.inputs", "chalicelib.checkout.inputs", "chalicelib.invoices.inputs")
WEB_FRAMEWORK = ("chalice",)  # a worker or a sweep serves no HTTP
# Replaced by functions/sqs_batch.py: it cost every worker ~60 ms of imports.
BATCH_UTILITY = ("aws_lambda_powertools.utilities.batch",)
# The matching engine, repairs and report writer: the reconciliation worker's, not the fan-out's.
RECON_ENGINE = ("chalicelib.recon.run", "chalicelib.recon.matching", "chalicelib.recon.repairs")
# PDF and font libraries: the hub writes its PDFs and subsets its font itself (chalicelib/documents/); fpdf2 cost
# the first bill or statement of a container ~350 ms of CPU (its import, Pillow, fontTools parsing the font).
DOCUMENT_LIBRARIES = ("fpdf", "PIL", "fontTools")
# Terminal tools: the CEL package's own command line (``cel.cli``) brought these into the first risk decision of every
# create and refund (~95 ms of CPU); chalicelib/risk/cel_extension.py loads the interpreter without it.
TERMINAL_LIBRARIES = ("typer", "rich", "prompt_toolkit", "pygments", "cel.cli")


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    access: Access
    serves_http: bool
    takes_bodies: bool  # has POST routes


FUNCTIONS = tuple(Function(g.name, g.handler, g.access, True, any(m == "POST" for m, _ in g.routes))
                  for g in ROUTE_GROUPS) + tuple(Function(w.name, w.handler, w.access, False, False) for w in WORKERS)


def must_not_import(function: Function) -> tuple[str, ...]:
    """The modules ``function`` cannot use, derived from its access (so a new function gets its rules)."""
    access = function.access
    banned = [*SM2_LIBRARIES, "chalicelib.crypto.sm", *BATCH_UTILITY, *DOCUMENT_LIBRARIES, *TERMINAL_LIBRARIES,
              *PYDANTIC]
    if "DocumentsBucket" not in access.buckets:
        banned += ("chalicelib.documents.pdf", "chalicelib.bills.bills", "chalicelib.bills.statements")
    if "CardVaultKey" not in access.kms:
        banned += VAULT
    if not access.channel_secrets:
        banned += CHANNEL_CODE
    if not function.serves_http:
        banned += WEB_FRAMEWORK
    if not function.takes_bodies:
        banned += (*ROUTING_MODELS, *ROUTING_DECISION)
        if not access.channel_secrets:
            banned += PYDANTIC_CORE
    if "IdempotencyTable" not in access.tables:
        banned += MERCHANT_INPUTS
    if access.tables.get("ReconTable") != WRITE:
        banned += RECON_ENGINE
    return tuple(dict.fromkeys(banned))


CHILD = """
import gc, importlib, json, os, sys
module, attr = sys.argv[1].rsplit(".", 1)
assert callable(getattr(importlib.import_module(module), attr))
print(json.dumps({"modules": sorted(sys.modules), "gc_enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
                  "pydantic_plugins": os.environ.get("PYDANTIC_DISABLE_PLUGINS")}))
"""


@dataclass(frozen=True)
class Imported:
    modules: frozenset[str]
    gc_enabled: bool
    frozen: int  # objects the import moved out of the collector's reach (functions.imported)
    pydantic_plugins: str | None  # PYDANTIC_DISABLE_PLUGINS as the handler left it


@cache
def import_handler(handler: str) -> Imported:
    """A fresh interpreter imports ``handler`` the way Lambda does (module, then attr), in Lambda's environment."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "PAYHUB_STAGE": "local",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "ap-east-1",
        "AWS_REGION": "ap-east-1", "LANG": "C.UTF-8", "AWS_LAMBDA_FUNCTION_NAME": "payhub-import-test",
    }
    out = subprocess.run([sys.executable, "-c", CHILD, handler], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, f"importing {handler} failed:\n{out.stderr}"
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return Imported(frozenset(result["modules"]), result["gc_enabled"], result["frozen"], result["pydantic_plugins"])


def modules_after_import(handler: str) -> frozenset[str]:
    return import_handler(handler).modules


def run_child(script: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter with a Lambda-like environment and the repository on its path; it must
    succeed (its last output line is what the test reads)."""
    out = subprocess.run([sys.executable, "-c", script, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=False, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
                                           "PAYHUB_STAGE": "local", "AWS_DEFAULT_REGION": "ap-east-1",
                                           "LANG": "C.UTF-8"})
    assert out.returncode == 0, out.stderr
    return out


def loaded(modules: frozenset[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_loads_no_library_it_cannot_use(function: Function):
    modules = modules_after_import(function.handler)
    found = [name for name in must_not_import(function) if loaded(modules, name)]
    assert not found, f"{function.handler} imports {found} at cold start, which {function.name} cannot use"


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_collects_garbage_again_once_imported(function: Function):
    """The collector is paused for the import (functions/__init__.py) and must be back on when it ends: a
    handler module that does not call ``functions.imported()`` would leave it off for the container's life."""
    result = import_handler(function.handler)
    assert result.gc_enabled, f"{function.handler} leaves the garbage collector disabled"
    assert result.frozen > 0, f"{function.handler} was imported with the collector running"


def test_no_function_scans_installed_packages_for_pydantic_plugins():
    """In Lambda the first model built would read every installed distribution's metadata looking for pydantic
    plugins, of which the hub has none (functions/__init__.py turns the search off there, and only there)."""
    body_function = next(f for f in FUNCTIONS if f.takes_bodies)
    assert import_handler(body_function.handler).pydantic_plugins == "__all__"
    out = subprocess.run([sys.executable, "-c", "import functions, os; print(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "None"  # outside Lambda (tests, the local stack) nothing changes


def test_every_deployed_function_is_checked():
    handlers = {f.handler for f in FUNCTIONS}
    assert len(handlers) == len(FUNCTIONS) == len(ROUTE_GROUPS) + len(WORKERS)
    # The fan-out has a module of its own, so it does not load the reconciliation worker's imports.
    fan_out = next(f.handler for f in FUNCTIONS if f.name == "recon_fanout").rsplit(".", 1)[0]
    assert [h for h in handlers if h.rsplit(".", 1)[0] == fan_out] == ["functions.recon_fanout.fan_out"]


def test_the_banned_project_modules_exist():
    """A renamed module would make its rule pass vacuously."""
    project = [m for m in (*VAULT, *CHANNEL_CODE, *RECON_ENGINE, *MERCHANT_INPUTS, *ROUTING_MODELS, *ROUTING_DECISION)
               if m.startswith("chalicelib.")]
    assert [m for m in project if importlib.util.find_spec(m) is None] == []


def test_the_check_sees_what_a_function_does_load():
    """The subprocess really reports imports: the payments function (rights on the vault key) and the
    reconciliation worker load what the others may not, once they use it."""
    assert loaded(modules_after_import("chalicelib.vault.cards.vault"), "chalicelib.vault.envelope")
    assert loaded(modules_after_import("functions.recon_worker.handler"), "chalicelib.recon.matching")
    assert all(loaded(modules_after_import("chalicelib.service.input_models.CreatePaymentInput"), name)
               for name in PYDANTIC_MODELS)
    assert loaded(modules_after_import("functions.callbacks.app"), "pydantic_core")


FIRST_REQUEST = """
import importlib, json, sys
module, attr = sys.argv[1].rsplit(".", 1)
getattr(importlib.import_module(module), attr)
# What a channel callback, a status query or a refund does before it reaches the network: read the account's
# document, resolve the attempt's (built-in) method, load the channel's adapter.
from chalicelib.channels import registry
from chalicelib.config.accounts import ChannelAccountConfig
from chalicelib.routing import methods
config = ChannelAccountConfig.model_validate_json(json.dumps({
    "account_id": "wx-main", "channel": "wechatpay", "methods": ["wechat.native"],
    "api_base_url": "https://api.mch.weixin.qq.com", "settings": {"mchid": "1900000001"}}))
assert methods.resolve("wechat.native").channel == config.channel
registry.adapter(config.channel)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if f.access.channel_secrets], ids=lambda f: f.name)
def test_reading_an_account_loads_no_model_machinery(function: Function):
    """Moving pydantic from the import to the first request would save nothing: a function that reads channel
    accounts (callbacks, the channel workers, payments) must get through its first request's account work without it."""
    out = run_child(FIRST_REQUEST, function.handler)
    modules = frozenset(json.loads(out.stdout.strip().splitlines()[-1]))
    assert loaded(modules, "chalicelib.channels.wechatpay")  # the request's work did run
    banned = (*PYDANTIC_MODELS, *(() if function.takes_bodies else (*ROUTING_MODELS, *ROUTING_DECISION)))
    found = [name for name in banned if loaded(modules, name)]
    assert not found, f"{function.handler}'s first request loads {found}"


# What the first request of each function that takes bodies validates, through the edge's parse_body as its routes do,
# and what a create's routing reads (the merchant's stored rules or none, a configured method's definition).
_BODY = """
import importlib, json, sys, types
module, attr = sys.argv[1].rsplit(".", 1)
getattr(importlib.import_module(module), attr)
from functions.edge import parse_body

def parsed(model, body):
    return parse_body(types.SimpleNamespace(raw_body=json.dumps(body).encode()), model)

def refused(model, body):
    try:
        parsed(model, body)
    except Exception as exc:  # the API's InvalidRequest, naming the field
        return exc.param
    raise AssertionError(f"{model.__name__} took {body}")
"""
_ROUTING = """
from chalicelib.routing.method_definition import MethodDefinition
from chalicelib.routing.rules import NO_RULES, StoredRouting
assert NO_RULES.fallback and not NO_RULES.rules
stored = StoredRouting.model_validate_json(json.dumps({"merchant_id": "m_1", "version": 1, "created_at": "2026-12-07",
    "rules": {"rules": [{"rule_id": "r", "methods": ["wechat.*"], "candidates": [{"account_id": "wx-main"}]}]}}))
assert stored.rules.rules[0].takes_method("wechat.native")
MethodDefinition.model_validate({"method": "wechat.native_hk", "protocol_method": "wechat.native"})
"""
BODY_FIRST_REQUESTS = {
    "payments": _BODY + _ROUTING + """
from chalicelib.service.inputs import ConfirmPaymentInput, CreatePaymentInput, StartStepUpInput
body = {"merchant_order_no": "o-1", "amount": 100, "currency": "CNY", "description": "tea", "method": "wechat.native"}
assert parsed(CreatePaymentInput, body).payer.openid is None
assert refused(CreatePaymentInput, {**body, "method": "wechat.jsapi"}) == "payer.openid"
assert refused(CreatePaymentInput, {**body, "amount": 0}) == "amount"
parsed(ConfirmPaymentInput, {"sms_code": "123456"}), parsed(StartStepUpInput, {"method": "sms", "phone": "13800000000"})
""",
    "checkout": _BODY + _ROUTING + """
from chalicelib.checkout.inputs import CreateCheckoutSessionInput
body = {"merchant_order_no": "o-1", "amount": 100, "currency": "CNY", "description": "tea",
        "allowed_methods": ["wechat.native"], "return_url": "https://shop.example/done"}
assert parsed(CreateCheckoutSessionInput, body).allowed_methods == ["wechat.native"]
assert refused(CreateCheckoutSessionInput, {**body, "locale": "fr"}) == "locale"
""",
    "refunds": _BODY + """
from chalicelib.service.inputs import CreateRefundInput
assert parsed(CreateRefundInput, {"amount": 100, "merchant_refund_no": "r-1"}).reason is None
assert refused(CreateRefundInput, {"amount": 100}) == "merchant_refund_no"
""",
    "invoices": _BODY + """
from chalicelib.invoices.inputs import CreateInvoiceInput, ReverseInvoiceInput
line = {"description": "tea", "tax_code": "1030201020000000000", "tax_rate": "0.13", "amount": 100}
parsed(CreateInvoiceInput, {"merchant_invoice_no": "i-1", "kind": "ordinary", "payment_ids": ["pay_1"],
                            "buyer": {"type": "person", "name": "Li Lei"}, "lines": [line]}).check()
assert parsed(ReverseInvoiceInput, {}).reason == "refund"
""",
    "operator": _BODY + """
from chalicelib.service.operator_inputs import CreateApiKeyInput, RotateInput
assert parsed(CreateApiKeyInput, {"name": "shop"}).name == "shop"
assert refused(RotateInput, {"overlap_seconds": -1}) == "overlap_seconds"
""",
    "callbacks": _BODY,  # a channel's notification: the account work above (test_reading_an_account...)
    "recon": _BODY + """
from chalicelib.service.json_body import read_object
assert read_object(b'{"note": "channel confirmed by email"}') == {"note": "channel confirmed by email"}
""",
    "payouts": _BODY + """
from chalicelib.service import payouts
item = {"item_ref": "i1", "amount": 100, "payee_account_no": "6225000000000001", "payee_name": "Li Lei"}
assert payouts.check({"merchant_batch_no": "b-1", "items": [item]}).ok
assert payouts.check({"merchant_batch_no": "b-1", "items": [{"item_ref": "i1"}]}).problems[0].field == "amount"
""",
}


PLAIN_VALIDATION = {"payouts", "recon"}


def test_every_function_taking_bodies_has_its_first_request_checked():
    assert {f.name for f in FUNCTIONS if f.takes_bodies} == set(BODY_FIRST_REQUESTS)


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if f.takes_bodies], ids=lambda f: f.name)
def test_a_first_request_validates_without_model_machinery(function: Function):
    """A request body (and a create's routing rules) validated as the routes do it, in a fresh interpreter after the
    handler's import: pydantic's model machinery stays out, so it is paid neither at cold start nor on the request."""
    script = BODY_FIRST_REQUESTS[function.name] + "\nprint(json.dumps(sorted(sys.modules)))\n"
    out = run_child(script, function.handler)
    modules = frozenset(json.loads(out.stdout.strip().splitlines()[-1]))
    # the validation did run (a payout batch's items are checked by plain code: 10,000 of them, line by line)
    assert function.name in PLAIN_VALIDATION or loaded(modules, "pydantic_core")
    found = [name for name in PYDANTIC_MODELS if loaded(modules, name)]
    assert not found, f"{function.handler}'s first request loads {found}"


RISK_DECISION = """
import importlib, json, sys
module, attr = sys.argv[1].rsplit(".", 1)
getattr(importlib.import_module(module), attr)
from chalicelib.risk.compiled import compile_rule
from chalicelib.risk.rules import Rule
from chalicelib.stepup import hooks  # what a create or a refund imports for its risk decision
rule = Rule(rule_id="big", expr="amount > 100", action="review")
assert compile_rule(rule).variables == {"amount"}
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if f.access.risk_secrets], ids=lambda f: f.name)
def test_a_risk_decision_loads_no_terminal_tool(function: Function):
    """The first create or refund of a container decides its risk with the CEL interpreter: the interpreter alone."""
    out = run_child(RISK_DECISION, function.handler)
    modules = frozenset(json.loads(out.stdout.strip().splitlines()[-1]))
    assert loaded(modules, "cel.cel")
    found = [name for name in TERMINAL_LIBRARIES if loaded(modules, name)]
    assert not found, f"{function.handler}'s risk decision loads {found}"


def test_the_invoice_workers_first_message_loads_nothing_it_cannot_use():
    """The invoice worker imports its modules with its first message (functions/invoice_worker.py): that message must
    obey the worker's rules too. Reversing an invoice once loaded the invoicing API's request models and pydantic."""
    worker = next(f for f in FUNCTIONS if f.name == "invoice_worker")
    modules = modules_after_import("chalicelib.invoices.reversal.red")  # imports issuing as well
    assert loaded(modules, "chalicelib.invoices.issuing")
    found = [name for name in must_not_import(worker) if loaded(modules, name)]
    assert not found, f"the invoice worker's first message loads {found}"


def test_fetching_a_statement_loads_no_run():
    """The sharded plan step fetches the day's statement (chalicelib/recon/fetch.py) and needs nothing else of a
    run: not the matching, the repairs through the payment services, nor the reports."""
    modules = modules_after_import("chalicelib.recon.fetch.fetch")
    found = [name for name in ("chalicelib.recon.run", "chalicelib.recon.repairs", "chalicelib.recon.report",
                               "chalicelib.service") if loaded(modules, name)]
    assert not found, f"fetching a statement loads {found}"



def test_the_shard_steps_that_run_no_engine_load_no_duckdb():
    """Of the four ReconShards steps only partition and match run DuckDB: plan cuts the statement's text and combine adds
    up the shards' results and completes the run, so neither pays DuckDB's import at its cold start or in its work."""
    assert loaded(modules_after_import("chalicelib.recon.columnar.Workspace"), "duckdb")  # the check sees it
    for work in ("chalicelib.recon.shards.chunk_lines", "chalicelib.recon.shards.combine",
                 "chalicelib.recon.fetch.fetch", "chalicelib.recon.run.complete"):
        assert not loaded(modules_after_import(work), "duckdb"), f"{work} loads DuckDB"


FIRST_DOCUMENTS = """
import json, sys
from functions.bills import app  # noqa: F401  (the bills function's import, as Lambda does it)
import functions.statements  # noqa: F401
from chalicelib.bills import bills, statements
bills.render_bill({"kind": "payment", "id": "bill_pay_1", "merchant": {"id": "mch_1", "name": "茶馆"},
                   "merchant_order_no": "1001", "description": "绿茶", "payment_id": "pay_1",
                   "method": "wechat.native", "channel": "wechatpay", "channel_transaction_id": "4200",
                   "amount": 8888, "currency": "CNY", "amount_refunded": 0, "fee": None, "status": "succeeded",
                   "created_at": "2026-03-01T02:14:05Z", "paid_at": "2026-03-01T02:14:31Z", "version": 1})
line = statements.Line("2026-03-01", "2026-03-01T02:14:31Z", "payment", 8888, "CNY", "jnl_1", "pay_1", "1001")
statements.to_pdf(statements.Statement("mch_1", "茶馆", "2026-03", "CNY", (line,), 8888, "2026-04-01T07:00:00Z"))
print(json.dumps(sorted(sys.modules)))
"""


def test_rendering_a_bill_and_a_statement_loads_no_pdf_library():
    """The first bill and statement a container renders are written by the hub's own writer: no fpdf2, no Pillow,
    no fontTools (held beside the cold-start bench, bench/cold_start.py, which times the same work)."""
    out = run_child(FIRST_DOCUMENTS)
    modules = frozenset(json.loads(out.stdout.strip().splitlines()[-1]))
    assert loaded(modules, "chalicelib.documents.truetype")  # the check sees the rendering
    found = [name for name in DOCUMENT_LIBRARIES if loaded(modules, name)]
    assert not found, f"rendering the first documents loads {found}"


# Modules that only some routes of a function use, imported by those routes: what the function's cold start and its most
# common request (a create) must not load. The checkout page's payment flow (chalicelib/checkout/payer.py: risk
# control, step-up, attempts, ~10 ms of CPU) is not the session API's; the merchant events' modules and the Standard
# Webhooks library are not a payment create's, nor is the OpenAPI document (it builds every pydantic model).
ROUTE_ONLY = {
    "functions.checkout.app": ("chalicelib.checkout.payer", "chalicelib.risk", "chalicelib.stepup"),
    "functions.payments.app": ("chalicelib.service.webhooks", "standardwebhooks", "functions.openapi"),
}


@pytest.mark.parametrize(("handler", "modules"), ROUTE_ONLY.items(), ids=list(ROUTE_ONLY))
def test_what_only_some_routes_use_is_imported_by_those_routes(handler: str, modules: tuple[str, ...]):
    found = [name for name in modules if loaded(modules_after_import(handler), name)]
    assert not found, f"{handler}'s import loads {found}"
    assert all(importlib.util.find_spec(name) for name in modules)  # a renamed module would pass vacuously


DATACLASS_DOCSTRINGS = """
import dataclasses, importlib, json, sys
for handler in sys.argv[1:]:
    module, attr = handler.rsplit(".", 1)
    getattr(importlib.import_module(module), attr)
import chalicelib.stepup.hooks, chalicelib.risk.provider, chalicelib.stepup.credentials, chalicelib.routing.rules
from chalicelib.channels import registry
registry.adapter("wechatpay")
undocumented = [f"{name}.{value.__name__}" for name, module in list(sys.modules.items())
                if name.startswith(("chalicelib", "functions")) for value in vars(module).values()
                if isinstance(value, type) and value.__module__ == name and dataclasses.is_dataclass(value)
                and (value.__doc__ or "").startswith(value.__name__ + "(")]
print(json.dumps(undocumented))
"""


def test_the_dataclasses_of_a_create_or_refund_are_documented():
    """``dataclass`` writes a class without a docstring one from its signature (``inspect.signature``): ~0.05 ms of
    CPU a class, ~2 ms over the ~60 classes that the API functions' imports and a create's or refund's work define."""
    handlers = [f.handler for f in FUNCTIONS if f.name in ("payments", "checkout", "refunds")]
    out = run_child(DATACLASS_DOCSTRINGS, *handlers)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
