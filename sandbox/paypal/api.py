"""The REST endpoints the hub calls, each given the app (merchant) its bearer token belongs to.

Parsing and field checks live here; business rules (transitions, refund limits) live in ``state``. Answers are
``(status, JSON)``; errors are raised as ``PayPalError`` and rendered by the server.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.common.httpserver import Request

from . import money, report
from .errors import PayPalError, authentication_failure, invalid_request, not_found, unprocessable
from .resources import capture_json, order_json, refund_json
from .state import Capture, Merchant, Order, Refund, SandboxState, now_utc, paypal_id
from .webhooks import CertBook, WebhookSender, signed_message

MAX_ID_CHARS = 127
MAX_SEARCH_DAYS = 31


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    payload: Any


@dataclass
class Hooks:
    """What the server does when money-relevant things happen (raise webhooks, schedule settlements)."""

    order_approved: Callable[[Order], None]
    capture_made: Callable[[Capture], None]
    refund_made: Callable[[Refund], None]


def _body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_request("MALFORMED_REQUEST_JSON", "The request JSON is not well formed.") from exc
    if not isinstance(body, dict):
        raise invalid_request("MALFORMED_REQUEST_JSON", "The request JSON is not an object.")
    return body


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise invalid_request("INVALID_STRING_LENGTH", f"{name} must be a string of 1-{MAX_ID_CHARS} characters.")
    return value


def _amount(block: Any) -> tuple[str, int]:
    if not isinstance(block, dict):
        raise invalid_request("MISSING_REQUIRED_PARAMETER", "amount is required.")
    currency = block.get("currency_code")
    if not isinstance(currency, str):
        raise invalid_request("MISSING_REQUIRED_PARAMETER", "amount.currency_code is required.")
    try:
        return currency, money.parse_value(currency, block.get("value"))
    except money.AmountError as exc:
        raise unprocessable(exc.issue, str(exc)) from exc


def _parse_time(value: str | None, name: str) -> datetime:
    if not value:
        raise invalid_request("MISSING_REQUIRED_PARAMETER", f"{name} is required.")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid_request("INVALID_PARAMETER_SYNTAX", f"{name} is not an Internet date and time.") from exc
    if moment.tzinfo is None:
        raise invalid_request("INVALID_PARAMETER_SYNTAX", f"{name} needs an offset.")
    return moment


class RestApi:
    def __init__(self, state: SandboxState, sender: WebhookSender, certs: CertBook, hooks: Hooks,
                 base_url: Callable[[], str], *, token_ttl_s: int, complete_refunds: bool, report_live: bool,
                 faults: report.StatementFaults) -> None:
        self._state, self._sender, self._certs, self._hooks = state, sender, certs, hooks
        self._base_url = base_url
        self._token_ttl_s = token_ttl_s
        self._complete_refunds = complete_refunds
        self._report_live = report_live
        self._statement_faults = faults
        self.account_number = report.random_account_number()

    # -- OAuth2 ------------------------------------------------------------------------------------------

    def token(self, request: Request) -> Answer:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            client_id, secret = "", ""
        merchant = self._state.merchant(client_id) if scheme == "Basic" else None
        if merchant is None or not _same(merchant.client_secret, secret):
            return Answer(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if request.body.decode(errors="replace").strip() != "grant_type=client_credentials":
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"})
        token = self._state.issue_token(merchant.client_id, self._token_ttl_s)
        return Answer(200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                            "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": self._token_ttl_s,
                            "nonce": f"{now_utc():%Y-%m-%dT%H:%M:%SZ}{paypal_id(20)}"})

    def authenticate(self, request: Request) -> Merchant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        merchant = self._state.token_owner(token) if scheme == "Bearer" and token else None
        if merchant is None:
            raise authentication_failure()
        return merchant

    # -- orders ------------------------------------------------------------------------------------------

    def _idempotent(self, request: Request, merchant: Merchant, operation: str,
                    work: Callable[[], Answer]) -> Answer:
        request_id = request.headers.get("paypal-request-id")
        if request_id:
            if len(request_id) > 108:
                raise invalid_request("INVALID_STRING_LENGTH", "PayPal-Request-Id is longer than 108 characters.")
            recalled = self._state.recall(merchant.client_id, request_id, operation)
            if recalled is not None:
                return Answer(*recalled)
        answer = work()
        if request_id:
            self._state.remember(merchant.client_id, request_id, operation, answer.status, answer.payload)
        return answer

    def create_order(self, request: Request, merchant: Merchant) -> Answer:
        return self._idempotent(request, merchant, "create_order", lambda: self._create_order(request, merchant))

    def _create_order(self, request: Request, merchant: Merchant) -> Answer:
        body = _body(request)
        if body.get("intent") != "CAPTURE":
            raise invalid_request("INVALID_PARAMETER_VALUE", "This sandbox supports intent CAPTURE only.")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1 or not isinstance(units[0], dict):
            raise invalid_request("INVALID_ARRAY_MAX_ITEMS", "purchase_units must hold exactly one purchase unit.")
        unit = units[0]
        currency, minor = _amount(unit.get("amount"))
        context = body.get("application_context")
        if not isinstance(context, dict):
            source = body.get("payment_source")
            paypal = source.get("paypal") if isinstance(source, dict) else None
            context = paypal.get("experience_context") if isinstance(paypal, dict) else None
        context = context if isinstance(context, dict) else {}
        custom_id = _optional_text(unit, "custom_id") or ""
        description = unit.get("description") if isinstance(unit.get("description"), str) else ""
        order = self._state.create_order(Order(
            order_id=paypal_id(17), client_id=merchant.client_id, currency=currency, amount_minor=minor,
            reference_id=_optional_text(unit, "reference_id") or "default", custom_id=custom_id,
            invoice_id=_optional_text(unit, "invoice_id") or "", description=str(description)[:127],
            return_url=_optional_url(context, "return_url"), cancel_url=_optional_url(context, "cancel_url"),
            brand_name=context.get("brand_name") if isinstance(context.get("brand_name"), str) else None,
            created_at=now_utc(),
        ))
        return Answer(201, self.order_json(order))

    def order_json(self, order: Order) -> dict[str, Any]:
        merchant = self._state.merchant(order.client_id)
        assert merchant is not None
        return order_json(self._base_url(), order, merchant, self._state.captures_of(order.order_id),
                          self._state.refunds_of_order(order.order_id))

    def get_order(self, request: Request, merchant: Merchant) -> Answer:
        order = self._state.order(request.path_params["order_id"])
        if order.client_id != merchant.client_id:
            raise not_found("The specified resource does not exist.")
        return Answer(200, self.order_json(order))

    def capture_order(self, request: Request, merchant: Merchant) -> Answer:
        return self._idempotent(request, merchant, "capture", lambda: self._capture(request, merchant))

    def _capture(self, request: Request, merchant: Merchant) -> Answer:
        if request.body.strip() not in (b"", b"{}"):
            _body(request)  # a body is allowed (payment_source), but it must be JSON
        order, capture = self._state.capture_order(request.path_params["order_id"], merchant.client_id)
        answer = Answer(201, self.order_json(order))
        self._hooks.capture_made(capture)
        return answer

    # -- captures and refunds ----------------------------------------------------------------------------

    def get_capture(self, request: Request, merchant: Merchant) -> Answer:
        capture = self._state.capture(request.path_params["capture_id"])
        if capture.client_id != merchant.client_id:
            raise not_found("The specified resource does not exist.")
        return Answer(200, capture_json(self._base_url(), capture, merchant))

    def refund_capture(self, request: Request, merchant: Merchant) -> Answer:
        return self._idempotent(request, merchant, "refund", lambda: self._refund(request, merchant))

    def _refund(self, request: Request, merchant: Merchant) -> Answer:
        body = _body(request) if request.body.strip() else {}
        currency, minor = _amount(body["amount"]) if "amount" in body else (None, None)
        refund = self._state.create_refund(
            request.path_params["capture_id"], merchant.client_id, minor, currency,
            _optional_text(body, "invoice_id"), _optional_text(body, "custom_id"),
            body.get("note_to_payer") if isinstance(body.get("note_to_payer"), str) else None,
            complete_now=self._complete_refunds,
        )
        self._hooks.refund_made(refund)
        return Answer(201, refund_json(self._base_url(), refund, merchant))

    def get_refund(self, request: Request, merchant: Merchant) -> Answer:
        refund = self._state.refund(request.path_params["refund_id"])
        if refund.client_id != merchant.client_id:
            raise not_found("The specified resource does not exist.")
        return Answer(200, refund_json(self._base_url(), refund, merchant))

    # -- webhooks ----------------------------------------------------------------------------------------

    def create_webhook(self, request: Request, merchant: Merchant) -> Answer:
        body = _body(request)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid_request("INVALID_PARAMETER_SYNTAX", "url must be an http(s) URL.")
        types = body.get("event_types")
        if not isinstance(types, list) or not types or not all(isinstance(t, dict) and isinstance(t.get("name"), str)
                                                               for t in types):
            raise invalid_request("MISSING_REQUIRED_PARAMETER", "event_types must list {name} objects.")
        webhook = self._state.add_webhook(merchant.client_id, url, frozenset(t["name"] for t in types))
        return Answer(201, _webhook_json(self._base_url(), webhook.webhook_id, webhook.url, webhook.event_types))

    def list_webhooks(self, request: Request, merchant: Merchant) -> Answer:
        return Answer(200, {"webhooks": [_webhook_json(self._base_url(), w.webhook_id, w.url, w.event_types)
                                         for w in self._state.webhooks_of(merchant.client_id)]})

    def verify_webhook_signature(self, request: Request, merchant: Merchant) -> Answer:
        body = _body(request)
        names = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")
        missing = [n for n in names if not isinstance(body.get(n), str) or not body.get(n)]
        if missing or not isinstance(body.get("webhook_event"), dict):
            raise invalid_request("MISSING_REQUIRED_PARAMETER", f"missing {', '.join(missing) or 'webhook_event'}")
        webhook = self._state.webhook(body["webhook_id"])
        if webhook is None or webhook.client_id != merchant.client_id:
            raise not_found("Webhook id is not one of this app's webhooks.")
        return Answer(200, {"verification_status": "SUCCESS" if self._verifies(body) else "FAILURE"})

    def _verifies(self, body: Mapping[str, Any]) -> bool:
        transmission = self._sender.transmission(body["transmission_id"])
        cert = self._certs.find(body["cert_url"].rsplit("/", 1)[-1])
        if transmission is None or cert is None or body["auth_algo"] != "SHA256withRSA":
            return False
        if body["cert_url"] != self._sender.cert_url(cert) or json.loads(transmission.body) != body["webhook_event"]:
            return False  # another certificate URL, or an event that is not the one PayPal sent
        message = signed_message(body["transmission_id"], body["transmission_time"], body["webhook_id"], transmission.body)
        public_key = cert.certificate.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        try:
            public_key.verify(base64.b64decode(body["transmission_sig"], validate=True), message, padding.PKCS1v15(),
                              hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def cert(self, request: Request) -> tuple[int, bytes]:
        cert = self._certs.find(request.path_params["cert_id"])
        if cert is None:
            raise not_found("No such certificate.")
        return 200, cert.chain_pem.encode()

    # -- reporting ---------------------------------------------------------------------------------------

    def transactions(self, request: Request, merchant: Merchant) -> Answer:
        start = _parse_time(request.query.get("start_date"), "start_date")
        end = _parse_time(request.query.get("end_date"), "end_date")
        if end < start or end - start > timedelta(days=MAX_SEARCH_DAYS):
            raise invalid_request("INVALID_REQUEST", "Date range must be positive and at most 31 days.")
        try:
            page = int(request.query.get("page", "1"))
            page_size = int(request.query.get("page_size", "100"))
        except ValueError as exc:
            raise invalid_request("INVALID_PARAMETER_SYNTAX", "page and page_size must be integers.") from exc
        if page < 1 or not 1 <= page_size <= 500:
            raise invalid_request("INVALID_PARAMETER_VALUE", "page >= 1 and page_size 1..500.")
        forgotten = self._state.forgotten_orders()
        entries = [e for e in self._state.ledger_entries(merchant.client_id) if e.order_id not in forgotten]
        rows = report.search(entries, self._statement_faults, start, end, self.account_number)
        now = now_utc()
        refreshed = now if self._report_live else max(now, end)
        return Answer(200, {
            "transaction_details": rows[(page - 1) * page_size: page * page_size],
            "account_number": self.account_number,
            "start_date": start.strftime("%Y-%m-%dT%H:%M:%S%z"), "end_date": end.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "last_refreshed_datetime": refreshed.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "page": page, "total_items": len(rows), "total_pages": math.ceil(len(rows) / page_size),
            "links": [],
        })


def _optional_url(context: Mapping[str, Any], name: str) -> str | None:
    value = context.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise invalid_request("INVALID_PARAMETER_SYNTAX", f"{name} must be an http(s) URL.")
    return value


def _webhook_json(base_url: str, webhook_id: str, url: str, types: frozenset[str]) -> dict[str, Any]:
    return {"id": webhook_id, "url": url, "event_types": [{"name": name} for name in sorted(types)],
            "links": [{"href": f"{base_url}/v1/notifications/webhooks/{webhook_id}", "rel": "self", "method": "GET"}]}


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


__all__ = ["Answer", "Hooks", "PayPalError", "RestApi"]
