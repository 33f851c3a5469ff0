"""The ``/v1`` endpoints the hub calls. Each handler gets the decoded parameters and the authenticated account
and returns (status, JSON object) or (status, file bytes). Parameter checks live here; business rules live in
``state``; the Reporting API in ``reports``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .currencies import SUPPORTED, amount_problem
from .errors import InvalidRequest, NotFound
from .records import TEST_CARDS, Account, Intent
from .reports import Reporting
from .resources import balance_transaction_json, charge_json, endpoint_json, intent_json, list_json, refund_json
from .sessions import CheckoutBook, SessionParams
from .state import IntentParams, SandboxState
from .webhooks import WebhookSender

AMOUNT_MAX = 99_999_999
METADATA_KEYS_MAX, METADATA_KEY_CHARS_MAX, METADATA_VALUE_CHARS_MAX = 50, 40, 500
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_CLAUSE = re.compile(r"""^(?:metadata\[(['"])(?P<key>[^'"]{1,40})\1\]|(?P<field>status|currency|amount)):"""
                     r"""(['"]?)(?P<value>[^'"]*)\4$""")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    payload: dict[str, Any] | bytes


Handler = Callable[[Mapping[str, Any], Mapping[str, str], Account], Answer]


# -- parameter helpers ------------------------------------------------------------------------------------------


def _int(params: Mapping[str, Any], name: str, *, required: bool = False, minimum: int = 0,
         maximum: int = AMOUNT_MAX) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise InvalidRequest(f"Missing required param: {name}.", code="parameter_missing", param=name)
        return None
    if not isinstance(raw, str) or not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise InvalidRequest(f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name)
    return int(raw)


def _str(params: Mapping[str, Any], name: str, *, required: bool = False, max_chars: int = 5000) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise InvalidRequest(f"Missing required param: {name}.", code="parameter_missing", param=name)
        return None
    if not isinstance(raw, str) or len(raw) > max_chars:
        raise InvalidRequest(f"Invalid string: {name}", code="parameter_invalid_string", param=name)
    return raw


def _bool(params: Mapping[str, Any], name: str) -> bool:
    raw = params.get(name)
    if raw in (None, "", "false"):
        return False
    if raw == "true":
        return True
    raise InvalidRequest(f"Invalid boolean: {raw}", param=name)


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _str(params, name) or default
    if value not in allowed:
        raise InvalidRequest(f"Invalid {name}: must be one of {', '.join(allowed)}", param=name)
    return value


def _metadata(params: Mapping[str, Any]) -> dict[str, str]:
    raw = params.get("metadata") or {}
    if not isinstance(raw, dict) or len(raw) > METADATA_KEYS_MAX:
        raise InvalidRequest("metadata must be a hash of at most 50 keys", param="metadata")
    for key, value in raw.items():
        if len(key) > METADATA_KEY_CHARS_MAX or not isinstance(value, str) or len(value) > METADATA_VALUE_CHARS_MAX:
            raise InvalidRequest(f"Invalid metadata[{key}]: keys up to 40 characters, values up to 500",
                                 param=f"metadata[{key}]")
    return {k: v for k, v in raw.items() if v != ""}


def _currency_amount(params: Mapping[str, Any]) -> tuple[int, str]:
    amount = _int(params, "amount", required=True, minimum=1)
    currency = (_str(params, "currency", required=True) or "").lower()
    if currency not in SUPPORTED:
        raise InvalidRequest(f"Invalid currency: {currency}.", code="parameter_invalid_string", param="currency")
    assert amount is not None
    problem = amount_problem(amount, currency)
    if problem:
        raise InvalidRequest(problem[1], code=problem[0], param="amount")
    return amount, currency


def _payment_method(params: Mapping[str, Any]) -> str | None:
    token = _str(params, "payment_method")
    if token is not None and token not in TEST_CARDS:
        raise InvalidRequest(f"No such PaymentMethod: '{token}'", code="resource_missing", param="payment_method")
    return token


def _return_url(params: Mapping[str, Any]) -> str | None:
    url = _str(params, "return_url", max_chars=2048)
    if url is not None and not url.startswith(("https://", "http://")):
        raise InvalidRequest("return_url must be an absolute URL", code="url_invalid", param="return_url")
    return url


def paginate(items: list[Any], params: Mapping[str, Any], url: str, render: Callable[[Any], dict[str, Any]]) -> Answer:
    limit = _int(params, "limit", minimum=1, maximum=100) or 10
    after = _str(params, "starting_after")
    if after is not None:
        ids = [item.id for item in items]
        if after not in ids:
            raise InvalidRequest(f"No such object: '{after}'", code="resource_missing", param="starting_after")
        items = items[ids.index(after) + 1:]
    created_gte = _int(params.get("created") or {}, "gte", maximum=2**40) if isinstance(params.get("created"), dict) else None
    if created_gte is not None:
        items = [item for item in items if item.created >= created_gte]
    return Answer(200, list_json(url, [render(item) for item in items[:limit]], len(items) > limit))


# -- handlers -----------------------------------------------------------------------------------------------------


class V1Api:
    def __init__(self, state: SandboxState, reporting: Reporting, webhooks: WebhookSender,
                 on_refund_created: Callable[[str], None], checkout: CheckoutBook) -> None:
        self._state = state
        self._checkout = checkout
        self._reporting = reporting
        self._webhooks = webhooks
        self._on_refund_created = on_refund_created

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/payment_intents", self.create_intent),
            ("GET", "/v1/payment_intents", self.list_intents),
            ("GET", "/v1/payment_intents/search", self.search_intents),
            ("GET", "/v1/payment_intents/{id}", self.get_intent),
            ("POST", "/v1/payment_intents/{id}/confirm", self.confirm_intent),
            ("POST", "/v1/payment_intents/{id}/capture", self.capture_intent),
            ("POST", "/v1/payment_intents/{id}/cancel", self.cancel_intent),
            ("POST", "/v1/checkout/sessions", self.create_checkout_session),
            ("GET", "/v1/checkout/sessions/{id}", self.get_checkout_session),
            ("POST", "/v1/checkout/sessions/{id}/expire", self.expire_checkout_session),
            ("POST", "/v1/refunds", self.create_refund),
            ("GET", "/v1/refunds", self.list_refunds),
            ("GET", "/v1/refunds/{id}", self.get_refund),
            ("GET", "/v1/balance_transactions", self.list_balance_transactions),
            ("POST", "/v1/webhook_endpoints", self.create_endpoint),
            ("GET", "/v1/webhook_endpoints", self.list_endpoints),
            ("GET", "/v1/webhook_endpoints/{id}", self.get_endpoint),
            ("DELETE", "/v1/webhook_endpoints/{id}", self.delete_endpoint),
            ("GET", "/v1/events/{id}", self.get_event),
            ("GET", "/v1/reporting/report_types/{id}", self.get_report_type),
            ("POST", "/v1/reporting/report_runs", self.create_report_run),
            ("GET", "/v1/reporting/report_runs/{id}", self.get_report_run),
            ("GET", "/v1/files/{id}/contents", self.get_file_contents),
        ]

    # PaymentIntents

    def create_intent(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        amount, currency = _currency_amount(params)
        types = params.get("payment_method_types") or ["card"]
        if types != ["card"]:
            raise InvalidRequest("The sandbox offers payment_method_types[]=card only.", param="payment_method_types")
        confirm = _bool(params, "confirm")
        payment_method = _payment_method(params)
        if confirm and payment_method is None:
            raise InvalidRequest("You must provide a payment_method to confirm.", code="parameter_missing",
                                 param="payment_method")
        intent_params = IntentParams(
            amount=amount, currency=currency, description=_str(params, "description", max_chars=1000),
            metadata=_metadata(params), payment_method_types=["card"],
            confirmation_method=_choice(params, "confirmation_method", ("automatic", "manual"), "automatic"),
            capture_method=_choice(params, "capture_method", ("automatic", "automatic_async", "manual"),
                                   "automatic").replace("automatic_async", "automatic"),
            payment_method=payment_method, return_url=_return_url(params),
        )
        return Answer(200, intent_json(self._state.create_intent(account.merchant_id, intent_params, confirm=confirm)))

    def list_intents(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return paginate(self._state.list_intents(account.merchant_id), params, "/v1/payment_intents", intent_json)

    def search_intents(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        query = _str(params, "query", required=True) or ""
        limit = _int(params, "limit", minimum=1, maximum=100) or 10
        clauses = [clause.strip() for clause in re.split(r"\s+AND\s+", query.strip(), flags=re.IGNORECASE)]
        wanted: list[tuple[str | None, str | None, str]] = []  # (metadata key, field, value)
        for clause in clauses:
            match = _CLAUSE.match(clause)
            if not match:
                raise InvalidRequest(f"The sandbox searches AND-ed field:'value' clauses only; cannot parse {clause!r}",
                                     param="query")
            wanted.append((match.group("key"), match.group("field"), match.group("value").lower()))

        def hit(intent: Any) -> bool:  # exact, case-insensitive, like Stripe's metadata search
            return all((intent.metadata.get(key, "") if key else str(getattr(intent, str(field)))).lower() == value
                       for key, field, value in wanted)

        found = [i for i in self._state.searchable_intents(account.merchant_id) if hit(i)]
        return Answer(200, {"object": "search_result", "url": "/v1/payment_intents/search", "has_more": len(found) > limit,
                            "next_page": None, "data": [intent_json(i) for i in found[:limit]]})

    def _intent_answer(self, intent: Intent, params: Mapping[str, Any]) -> Answer:
        """The intent, with ``expand[]=latest_charge`` honoured (the one expansion the sandbox offers)."""
        expand = params.get("expand") or []
        if not isinstance(expand, list) or not all(isinstance(field, str) for field in expand):
            raise InvalidRequest("Invalid array", param="expand")
        body = intent_json(intent)
        for field in expand:
            if field != "latest_charge":
                raise InvalidRequest(f"This property cannot be expanded ({field}).", param="expand")
            charge = self._state.charge(intent.latest_charge or "")
            body["latest_charge"] = charge_json(charge, intent) if charge else None
        return Answer(200, body)

    def get_intent(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return self._intent_answer(self._state.intent(account.merchant_id, path["id"]), params)

    def confirm_intent(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        intent = self._state.confirm_intent(account.merchant_id, path["id"], _payment_method(params), _return_url(params))
        return self._intent_answer(intent, params)

    def capture_intent(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        amount = _int(params, "amount_to_capture", minimum=1)
        return self._intent_answer(self._state.capture_intent(account.merchant_id, path["id"], amount), params)

    def cancel_intent(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        reason = _str(params, "cancellation_reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
            raise InvalidRequest(f"Invalid cancellation_reason: {reason}", param="cancellation_reason")
        return self._intent_answer(self._state.cancel_intent(account.merchant_id, path["id"], reason), params)

    # Checkout Sessions

    def create_checkout_session(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        if _str(params, "mode", required=True) != "payment":
            raise InvalidRequest("The sandbox makes mode=payment sessions only.", param="mode")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise InvalidRequest("Missing required param: line_items.", code="parameter_missing", param="line_items")
        total, currency, names = 0, None, []
        for n, item in enumerate(items):
            price = item.get("price_data") if isinstance(item, dict) else None
            if not isinstance(price, dict):
                raise InvalidRequest("The sandbox takes line_items with price_data only.",
                                     code="parameter_missing", param=f"line_items[{n}][price_data]")
            unit, item_currency = _currency_amount({"amount": price.get("unit_amount"), "currency": price.get("currency")})
            quantity = _int(item, "quantity", required=True, minimum=1, maximum=999) or 1
            product = price.get("product_data")
            name = _str(product, "name", required=True) if isinstance(product, dict) else None
            if name is None:
                raise InvalidRequest("Missing required param: product_data[name].", code="parameter_missing",
                                     param=f"line_items[{n}][price_data][product_data][name]")
            if currency not in (None, item_currency):
                raise InvalidRequest("All line_items must share one currency.", param=f"line_items[{n}]")
            total, currency, names = total + unit * quantity, item_currency, [*names, name]
        if total > AMOUNT_MAX:
            raise InvalidRequest("Amount must be no more than 999,999.99", code="amount_too_large", param="line_items")
        success_url = _str(params, "success_url", required=True, max_chars=5000) or ""
        cancel_url = _str(params, "cancel_url", max_chars=5000)
        for name, url in (("success_url", success_url), ("cancel_url", cancel_url)):
            if url is not None and not url.startswith(("https://", "http://")):
                raise InvalidRequest(f"Not a valid URL: {name}", code="url_invalid", param=name)
        intent_data = params.get("payment_intent_data") or {}
        if not isinstance(intent_data, dict):
            raise InvalidRequest("payment_intent_data must be a hash", param="payment_intent_data")
        assert currency is not None
        session = self._checkout.create(account.merchant_id, SessionParams(
            amount_total=total, currency=currency, product_name=", ".join(names), success_url=success_url,
            cancel_url=cancel_url, client_reference_id=_str(params, "client_reference_id", max_chars=200),
            metadata=_metadata(params), intent_metadata=_metadata(intent_data),
            intent_description=_str(intent_data, "description", max_chars=1000),
            expires_at=_int(params, "expires_at", maximum=2**40)))
        return Answer(200, self._checkout.json(session))

    def get_checkout_session(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return Answer(200, self._checkout.json(self._checkout.get(account.merchant_id, path["id"])))

    def expire_checkout_session(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return Answer(200, self._checkout.json(self._checkout.expire(account.merchant_id, path["id"])))

    # Refunds

    def create_refund(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        intent_id, charge_id = _str(params, "payment_intent"), _str(params, "charge")
        if not intent_id and not charge_id:
            raise InvalidRequest("One of payment_intent or charge is required.", code="parameter_missing",
                                 param="payment_intent")
        amount = _int(params, "amount", minimum=1)
        reason = _str(params, "reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise InvalidRequest(f"Invalid reason: {reason}", param="reason")
        if amount is not None:
            currency = self._state.intent(account.merchant_id, intent_id).currency if intent_id else None
            problem = amount_problem(amount, currency) if currency else None
            if problem:
                raise InvalidRequest(problem[1], code=problem[0], param="amount")
        refund = self._state.create_refund(account.merchant_id, intent_id, charge_id, amount, reason, _metadata(params))
        self._on_refund_created(refund.id)
        return Answer(200, refund_json(refund))

    def list_refunds(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        intent_id, charge_id = _str(params, "payment_intent"), _str(params, "charge")
        if intent_id:
            self._state.intent(account.merchant_id, intent_id)  # unknown intent: an error, as on Stripe
        refunds = self._state.list_refunds(account.merchant_id, intent_id, charge_id)
        return paginate(refunds, params, "/v1/refunds", refund_json)

    def get_refund(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return Answer(200, refund_json(self._state.refund(account.merchant_id, path["id"])))

    def list_balance_transactions(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        entries = list(reversed(self._state.ledger_entries(account.merchant_id)))
        return paginate(entries, params, "/v1/balance_transactions", balance_transaction_json)

    # Webhook endpoints and events

    def create_endpoint(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        url = _str(params, "url", required=True, max_chars=2048) or ""
        if not url.startswith(("https://", "http://")):
            raise InvalidRequest("Invalid URL: must be an absolute http(s) URL", code="url_invalid", param="url")
        events = params.get("enabled_events")
        if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
            raise InvalidRequest("Missing required param: enabled_events.", code="parameter_missing", param="enabled_events")
        endpoint = self._state.create_endpoint(account.merchant_id, url, events, _str(params, "api_version"))
        return Answer(200, endpoint_json(endpoint, with_secret=True))

    def list_endpoints(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return paginate(self._state.list_endpoints(account.merchant_id), params, "/v1/webhook_endpoints", endpoint_json)

    def get_endpoint(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return Answer(200, endpoint_json(self._state.endpoint(account.merchant_id, path["id"])))

    def delete_endpoint(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        self._state.delete_endpoint(account.merchant_id, path["id"])
        return Answer(200, {"id": path["id"], "object": "webhook_endpoint", "deleted": True})

    def get_event(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        event = self._webhooks.event(path["id"])
        if event is None or event.get("account", account.merchant_id) != account.merchant_id:
            raise NotFound(f"No such event: '{path['id']}'", param="id")
        return Answer(200, event)

    # Reporting and files

    def get_report_type(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return Answer(200, self._reporting.report_type_json(path["id"]))

    def create_report_run(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        report_type = _str(params, "report_type", required=True) or ""
        return Answer(200, self._reporting.create_run(account.merchant_id, report_type, params.get("parameters")))

    def get_report_run(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return Answer(200, self._reporting.run_json(account.merchant_id, path["id"]))

    def get_file_contents(self, params: Mapping[str, Any], path: Mapping[str, str], account: Account) -> Answer:
        return Answer(200, self._reporting.file_content(account.merchant_id, path["id"]))
