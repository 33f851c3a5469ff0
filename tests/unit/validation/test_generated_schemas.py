"""The light classes (chalicelib/validation/light.py) against the pydantic models they are generated from.

The models stay the source of truth; the API, the CLI and a create's routing validate with the light classes. Here
every light class is held to its model: the generated module is current, the fields are the model's, and document by
document (hand-picked edge cases, then documents hypothesis derives from them) both give the same values, dumps and
reprs, or the same error: a ``ValidationError`` with the same title, locations, types, messages and inputs, or the
API's own error (``InvalidRequest``) with the same message and field.
"""

from __future__ import annotations

import copy as copy_module
import importlib
import json
import os
import pickle
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from chalicelib.domain.errors import HubError
from chalicelib.validation import codegen
from chalicelib.validation.light import LightModel

PAIRS = [(getattr(importlib.import_module(t.light), name), getattr(importlib.import_module(t.models), name), t)
         for t in codegen.TARGETS for name in t.names]
IDS = [light.__name__ for light, _, _ in PAIRS]

NEXT_YEAR = date.today().year + 1
CARD = {"number": "6212345678901265", "exp_month": 12, "exp_year": NEXT_YEAR, "cvv": "123", "holder_name": "Li Lei"}
PAYMENT = {"merchant_order_no": "o-1", "amount": 100, "currency": "CNY", "description": "tea", "method": "wechat.native",
           "metadata": {"k": "v"}}
LINE = {"description": "tea", "tax_code": "1030201020000000000", "tax_rate": "0.13", "amount": 100}
RULE = {"rule_id": "gray-sh", "methods": ["wechat.native"], "currencies": ["CNY"], "max_amount": 500000,
        "gray": {"cities": ["Shanghai"], "percent": 10, "salt": "2026-12"},
        "candidates": [{"account_id": "wechat-new", "priority": 1, "weight": 1}, {"account_id": "wechat-b"}]}
# A valid document of each model: hypothesis starts from it.
VALID: dict[str, dict[str, Any]] = {
    "PayerInput": {"user_id": "u1", "openid": "o1", "ip": "10.0.0.1", "city": "Shanghai"},
    "CardInput": CARD,
    "InstalmentsInput": {"count": 6, "fee_payer": "seller"},
    "CreatePaymentInput": PAYMENT,
    "CreateRefundInput": {"amount": 100, "merchant_refund_no": "r@1", "reason": "size"},
    "ConfirmPaymentInput": {"sms_code": "123456"},
    "StartStepUpInput": {"method": "sms", "phone": "+8613800000000"},
    "VerifyStepUpInput": {"code": "123456", "credential": {"id": "x"}, "cvv": "123"},
    "RegisterAuthenticatorInput": {"credential": {"id": "x", "response": {}}},
    "SupportContactInput": {"email": "help@shop.example", "phone": "+86 21 5555", "url": "https://shop.example/help"},
    "CreateCheckoutSessionInput": {"merchant_order_no": "o-1", "amount": 100, "currency": "CNY", "description": "tea",
                                   "allowed_methods": ["wechat.native", "alipay.page"],
                                   "return_url": "https://shop.example/done", "locale": "en",
                                   "support_contact": {"email": "a@b.example"}},
    "BuyerInput": {"type": "company", "name": "Acme", "tax_no": "91350100M000100Y43", "address": "Road 1",
                   "phone": "021-5555", "bank_account": "Bank 1", "email": "a@b.example"},
    "LineInput": LINE,
    "CreateInvoiceInput": {"merchant_invoice_no": "i-1", "kind": "ordinary", "payment_ids": ["pay_1"],
                           "buyer": {"type": "person", "name": "Li Lei"}, "lines": [LINE]},
    "ReverseInvoiceInput": {"amount": 50, "reason": "discount"},
    "CreateApiKeyInput": {"name": "shop"},
    "RotateInput": {"overlap_seconds": 60, "name": "next"},
    "WebhookSecretRotateInput": {"overlap_seconds": 0},
    "Candidate": {"account_id": "wechat-a", "priority": 2, "weight": 0},
    "Gray": {"user_groups": ["staff"]},
    "Rule": RULE,
    "Failover": {"enabled": False, "create_timeout_ms": 200},
    "RoutingRules": {"rules": [RULE], "fallback": False},
    "StoredRouting": {"merchant_id": "m_1", "version": 3, "created_at": "2026-12-07T00:00:00Z", "rules": {}},
    "MethodDefinition": {"method": "wechat.native_hk", "protocol_method": "wechat.native", "settings": {"a": "b"},
                         "title": {"en": "WeChat Pay HK"}},
    "ChannelAccountConfig": {"account_id": "wx_main-1", "channel": "wechatpay", "methods": ["wechat.native"],
                             "currencies": ["CNY", "HKD"], "api_base_url": "https://api.mch.weixin.qq.com",
                             "merchant_ids": ["m1"], "settings": {"mchid": "1900000001"}},
}
# Edge cases the models' own tests care about: coercions, the validators' errors, the API's errors, what strict refuses.
CASES: dict[str, list[dict[str, Any]]] = {
    "CreatePaymentInput": [
        {**PAYMENT, "amount": 100.0}, {**PAYMENT, "amount": 100.5}, {**PAYMENT, "amount": True},
        {**PAYMENT, "amount": "1", "currency": "XYZ", "method": "x", "extra": 1},
        {**PAYMENT, "method": "wechat.jsapi"}, {**PAYMENT, "method": "wechat.jsapi", "payer": {"openid": ""}},
        {**PAYMENT, "method": "wechat.h5", "payer": {"ip": "1.2.3.4"}},
        {**PAYMENT, "method": "unionpay.card"}, {**PAYMENT, "card": CARD},
        {**PAYMENT, "instalments": {"count": 3}}, {**PAYMENT, "instalments": {"count": 5, "fee_payer": "both"}},
        {**PAYMENT, "instalments": {"count": 3.0, "fee_payer": "seller"}}, {**PAYMENT, "instalments": {"count": "3"}},
        {**PAYMENT, "method": "unionpay.card", "card": CARD},
        {**PAYMENT, "method": "unionpay.card", "card": {**CARD, "number": "6212345678901266", "exp_year": 2020}},
        {**PAYMENT, "method": "unionpay.card", "card": {**CARD, "exp_month": 13, "exp_year": 2020}},
        {**PAYMENT, "method": "unionpay.card", "card": {**CARD, "exp_month": "12"}},
        {**PAYMENT, "method": "stripe.card", "payment_method": "pm_card_visa"},
        {**PAYMENT, "metadata": {"": "v"}}, {**PAYMENT, "metadata": {f"k{i}": "v" for i in range(21)}},
        {**PAYMENT, "description": "tea\x00"}, {**PAYMENT, "notify_url": "ftp://x"}, {**PAYMENT, "expires_in_seconds": 59},
        {**PAYMENT, "method": "wechat.nope"}, {**PAYMENT, "method": "wechat.native_hk"},
        {**PAYMENT, "method": "Not A Method!"},
        {k: v for k, v in PAYMENT.items() if k != "amount"}, {}, [],
    ],
    "CreateCheckoutSessionInput": [
        {**VALID["CreateCheckoutSessionInput"], "allowed_methods": ["wechat.native", "wechat.native"]},
        {**VALID["CreateCheckoutSessionInput"], "allowed_methods": ["unionpay.card"]},
        {**VALID["CreateCheckoutSessionInput"], "allowed_methods": []},
        {**VALID["CreateCheckoutSessionInput"], "locale": "fr", "support_contact": {"email": "no"}},
    ],
    "CreateInvoiceInput": [{**VALID["CreateInvoiceInput"], "lines": [{**LINE, "tax_rate": 0.13, "amount": "100"}]},
                           {**VALID["CreateInvoiceInput"], "payment_ids": ["pay 1"], "buyer": {"type": "x"}}],
    "ReverseInvoiceInput": [{}, {"amount": "5"}, {"amount": 0}],
    "RotateInput": [{"overlap_seconds": "60"}, {"overlap_seconds": 10**9}],
    "Gray": [{}, {"percent": 101}, {"percent": "5"}],
    "Rule": [{**RULE, "min_amount": 10, "max_amount": 5}, {**RULE, "currencies": ["XYZ"]},
             {**RULE, "candidates": [{"account_id": "a1"}, {"account_id": "a1"}]}, {**RULE, "methods": []}],
    "RoutingRules": [{"rules": [RULE, RULE]}, {"failover": {"create_timeout_ms": 100}}, {"rules": "x"}],
    "MethodDefinition": [{"method": "Bad Method", "protocol_method": "wechat.native"}],
    "ChannelAccountConfig": [{"account_id": "A", "channel": "", "methods": [], "currencies": ["XXX", "CNY"],
                              "api_base_url": "ftp://x", "priority": "high", "apiv3_key": "not here"},
                             {"account_id": "ab", "channel": "x", "methods": ["a"], "currencies": [],
                              "api_base_url": "http://x", "priority": "7", "enabled": "yes", "settings": {"k": 1}}],
}


@pytest.fixture(autouse=True)
def _configured_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    """A method of the right shape that is not built in is looked up in configuration: one configured method here."""
    from chalicelib.routing import methods

    monkeypatch.setattr(methods, "is_known", lambda method: method == "wechat.native_hk")


def outcome(model: Any, document: Any) -> tuple[Any, ...]:
    """What validating ``document`` gives, in terms both kinds of class can be compared in."""
    try:
        parsed = model.model_validate(document)
    except ValidationError as exc:
        return ("invalid", exc.title, json.loads(exc.json()))
    except HubError as exc:
        return ("refused", type(exc).__name__, exc.message, exc.param)
    return ("valid", parsed.model_dump(), parsed.model_dump(mode="json"), parsed.model_dump(exclude_none=True),
            parsed.model_dump_json(), repr(parsed), str(parsed))


@pytest.mark.parametrize("target", codegen.TARGETS, ids=lambda t: t.generated)
def test_the_generated_modules_are_current(target: codegen.Target):
    """Change a model and not its generated schema, and this fails: run ``python -m chalicelib.validation.codegen``."""
    assert codegen.path_of(target.generated).read_text() == codegen.render(target)


@pytest.mark.parametrize(("light", "model", "target"), PAIRS, ids=IDS)
def test_a_light_class_has_its_models_fields_and_names_it(light: type[LightModel], model: type[BaseModel],
                                                          target: codegen.Target):
    assert light._source == f"{target.models}:{model.__name__}" and light._schemas == target.generated
    assert light.model_fields_names() == tuple(model.model_fields) == tuple(light.__annotations__)
    assert light._frozen == bool(model.model_config.get("frozen"))
    assert light.model_json_schema() == model.model_json_schema()  # the OpenAPI document's schemas are the model's


@pytest.mark.parametrize(("light", "model", "target"), PAIRS, ids=IDS)
def test_a_light_class_validates_as_its_model(light: type[LightModel], model: type[BaseModel], target: codegen.Target):
    documents = [VALID[light.__name__], *CASES.get(light.__name__, [])]
    for document in documents:
        expected = outcome(model, document)
        assert outcome(light, document) == expected, document
    assert outcome(light, VALID[light.__name__])[0] == "valid"


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-(10**13), 10**13) | st.floats(allow_nan=False)
                     | st.text(max_size=40), lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)


@st.composite
def _mutated(draw: st.DrawFn, light: type[LightModel]) -> dict[str, Any]:
    """A valid document with some fields dropped, replaced by any JSON value, or added."""
    document = dict(VALID[light.__name__])
    for name in draw(st.lists(st.sampled_from(light.model_fields_names()), max_size=3)):
        if draw(st.booleans()):
            document.pop(name, None)
        else:
            document[name] = draw(_JSON)
    if draw(st.booleans()):
        document[draw(st.text(max_size=6))] = draw(_JSON)
    return document


@pytest.mark.parametrize(("light", "model", "target"), PAIRS, ids=IDS)
def test_derived_documents_get_the_same_answer(light: type[LightModel], model: type[BaseModel], target: codegen.Target):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_mutated(light))
    def check(document: dict[str, Any]) -> None:
        assert outcome(light, document) == outcome(model, document)

    check()


@pytest.mark.parametrize(("light", "model", "target"), PAIRS, ids=IDS)
def test_construct_copy_and_assignment_behave_as_the_model(light: type[LightModel], model: type[BaseModel],
                                                           target: codegen.Target):
    given_fields = {k: v for k, v in VALID[light.__name__].items() if not isinstance(v, dict | list)}
    built, expected = light.model_construct(**given_fields), model.model_construct(**given_fields)
    assert built.model_dump() == expected.model_dump()
    parsed, reference = light.model_validate(VALID[light.__name__]), model.model_validate(VALID[light.__name__])
    name = light.model_fields_names()[0]
    copy = parsed.model_copy(update={name: None})
    assert copy.model_dump() == reference.model_copy(update={name: None}).model_dump()
    assert parsed == light.model_validate(VALID[light.__name__]) and parsed != copy
    if light._frozen:
        with pytest.raises(ValidationError) as light_refusal:
            setattr(parsed, name, None)
        with pytest.raises(ValidationError) as model_refusal:
            setattr(reference, name, None)
        assert json.loads(light_refusal.value.json()) == json.loads(model_refusal.value.json())
        with pytest.raises(ValidationError) as light_refusal:
            delattr(parsed, name)
        with pytest.raises(ValidationError) as model_refusal:
            delattr(reference, name)
        assert json.loads(light_refusal.value.json()) == json.loads(model_refusal.value.json())
    else:
        setattr(parsed, name, None)
        setattr(reference, name, None)
        assert parsed.model_dump() == reference.model_dump()
        with pytest.raises(TypeError):
            hash(parsed)
    for copied in (copy_module.copy(parsed), copy_module.deepcopy(parsed), pickle.loads(pickle.dumps(parsed))):
        assert copied == parsed and copied.model_dump() == parsed.model_dump()
        assert copied.__pydantic_fields_set__ == parsed.__pydantic_fields_set__


def test_infinity_and_nan_are_dumped_as_json_null_as_the_model_does():
    """json.loads lets Infinity and NaN into a free-form field; neither is JSON, and BaseModel writes null."""
    from chalicelib.service import input_models, inputs

    document = {"credential": {"id": "x", "big": float("inf"), "odd": float("nan")}}
    light = inputs.RegisterAuthenticatorInput.model_validate(document)
    model = input_models.RegisterAuthenticatorInput.model_validate(document)
    assert light.model_dump_json() == model.model_dump_json()
    assert json.loads(light.model_dump_json())["credential"] == {"id": "x", "big": None, "odd": None}
    assert light.model_dump(mode="json") == model.model_dump(mode="json")


def test_the_generator_writes_defaults_as_values_and_refuses_containers():
    """A default is a value: a key named like a schema key ("metadata", "ref") must not be rewritten in it."""
    writer = codegen._Writer(codegen.TARGETS[0])
    assert writer.convert({"type": "default", "default": "ref", "schema": {"type": "str"}}) == {
        "type": "default", "default": "ref", "schema": {"type": "str"}}
    assert writer.convert({"type": "default", "default": ("CNY",), "schema": {"type": "str"}})["default"] == ("CNY",)
    with pytest.raises(ValueError, match="default_factory"):
        writer.convert({"type": "default", "default": {"metadata": "kept", "ref": "a.b:C"}, "schema": {"type": "str"}})


@pytest.mark.parametrize("target", codegen.TARGETS, ids=lambda t: t.generated)
def test_a_generated_module_imported_first_works(target: codegen.Target):
    """The generated module and the light classes import each other: whichever comes first, both load and validate."""
    first = VALID[target.names[-1]]
    script = (f"import {target.generated}, json, sys\nfrom {target.light} import {target.names[-1]} as light\n"
              f"print(light.model_validate(json.loads(sys.argv[1])).model_dump_json())")
    out = subprocess.run([sys.executable, "-c", script, json.dumps(first)], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[3], check=False,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ".", "PAYHUB_STAGE": "local"})
    assert out.returncode == 0, out.stderr


def test_a_light_class_built_by_keywords_validates():
    from chalicelib.routing.rules import Failover, RoutingRules

    assert RoutingRules().failover == Failover(enabled=True, create_timeout_ms=3000)
    with pytest.raises(ValidationError) as refused:
        Failover(create_timeout_ms=1)
    assert refused.value.title == "Failover" and refused.value.errors()[0]["loc"] == ("create_timeout_ms",)


def test_the_generator_refuses_a_validator_it_could_not_import():
    """A validator written as a method lives on the model class, which the generated module must not import."""

    class Probe(BaseModel):
        model_config = ConfigDict(extra="forbid")
        x: int

        @field_validator("x")
        @classmethod
        def _positive(cls, value: int) -> int:
            return value

    writer = codegen._Writer(codegen.TARGETS[0])
    with pytest.raises(ValueError, match="module-level function"):
        writer.convert(Probe.__pydantic_core_schema__["schema"]["fields"]["x"])
