"""The body reader, the URL and text patterns, and the request schemas against what validation accepts."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.registry import ADAPTERS, METHODS, adapter
from chalicelib.domain.errors import InvalidRequest
from chalicelib.service import input_patterns
from chalicelib.service.inputs import CreatePaymentInput, CreateRefundInput
from chalicelib.service.json_body import MAX_DEPTH, read_object
from infra import gateway_responses

URL = re.compile(input_patterns.URL)
IPV6 = re.compile(input_patterns._ipv6())  # noqa: SLF001 (the piece under test)


def test_depth_is_counted_without_recursion_and_brackets_inside_strings_do_not_count():
    assert read_object(b'{"a": "' + b"[" * 10_000 + b'"}') == {"a": "[" * 10_000}
    nested = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert read_object(nested)
    with pytest.raises(InvalidRequest, match="nested deeper"):
        read_object(b"[" * 60_000)


@pytest.mark.parametrize(("raw", "param"), [
    (b'{"reason": "\\ud800"}', "reason"), (b'{"a": {"b": ["ok", "\\udc00"]}}', "a.b.1"),
    (b'{"a": {"\\ud800": 1}}', "a"), (b'{"\\ud800": 1}', None),
])
def test_lone_surrogates_are_refused_anywhere_naming_where(raw, param):
    with pytest.raises(InvalidRequest) as refused:
        read_object(raw)
    assert refused.value.param == param


def test_a_pair_of_surrogates_is_one_character_and_fine():
    assert read_object(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001F600"}


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"{", b"\xff", b"1" * 70_000])
def test_anything_but_a_json_object_of_reasonable_size_is_a_400(raw):
    with pytest.raises(InvalidRequest):
        read_object(raw)


@given(st.ip_addresses(v=6))
def test_every_ipv6_address_in_either_spelling_matches(address):
    assert IPV6.fullmatch(address.compressed) and IPV6.fullmatch(address.exploded)
    assert URL.fullmatch(f"http://[{address.compressed}]:443/hook")


@settings(max_examples=300, suppress_health_check=list(HealthCheck))
@given(st.from_regex(IPV6, fullmatch=True))
def test_whatever_the_ipv6_pattern_matches_is_an_ipv6_address(text):
    ipaddress.IPv6Address(text)


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1", "8o"])
def test_ports_outside_1_to_65535_do_not_match(port):
    assert not URL.fullmatch(f"https://example.com:{port}/hook")
    assert URL.fullmatch("https://example.com:65535/hook") and URL.fullmatch("https://example.com:1/hook")


def test_methods_listed_for_validation_are_exactly_what_the_adapters_offer():
    assert set(METHODS) == set().union(*(adapter(channel).methods for channel in ADAPTERS))
    assert len(METHODS) == len(set(METHODS))


def _body_schema(model):
    schema = model.model_json_schema()
    return schema, schema.pop("$defs", {})


@pytest.mark.parametrize("model", [CreatePaymentInput, CreateRefundInput])
def test_every_body_schema_forbids_unknown_properties(model):
    schema, defs = _body_schema(model)
    for sub in [schema, *defs.values()]:
        assert sub["additionalProperties"] is False, sub.get("title")


def test_metadata_keys_are_constrained_by_property_names_not_pattern_properties():
    metadata = CreatePaymentInput.model_json_schema()["properties"]["metadata"]
    assert "patternProperties" not in metadata
    assert metadata["propertyNames"]["pattern"] == input_patterns.TEXT
    assert metadata["additionalProperties"]["pattern"] == input_patterns.TEXT


def test_gateway_answers_are_valid_json_in_the_hub_shape():
    for kind, response in gateway_responses.definition().items():
        body = json.loads(response["responseTemplates"]["application/json"])
        assert body["error"]["request_id"] == "$context.requestId", kind
        assert set(body["error"]) <= {"code", "message", "param", "request_id"}
    assert gateway_responses.definition()["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
