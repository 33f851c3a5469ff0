"""JSON shapes of the objects, as Stripe's API (version 2024-06-20) renders them; fields the hub never reads
are kept to the few a developer expects to see."""

from __future__ import annotations

from typing import Any

from .records import BalanceTransaction, Charge, CheckoutSession, Intent, Refund, WebhookEndpoint


def intent_json(intent: Intent) -> dict[str, Any]:
    return {
        "id": intent.id, "object": "payment_intent", "amount": intent.amount,
        "amount_capturable": intent.amount_capturable, "amount_received": intent.amount_received,
        "canceled_at": intent.canceled_at, "cancellation_reason": intent.cancellation_reason,
        "capture_method": intent.capture_method, "client_secret": intent.client_secret,
        "confirmation_method": intent.confirmation_method, "created": intent.created, "currency": intent.currency,
        "description": intent.description, "last_payment_error": intent.last_payment_error,
        "latest_charge": intent.latest_charge, "livemode": False, "metadata": dict(intent.metadata),
        "next_action": intent.next_action, "payment_method": intent.payment_method,
        "payment_method_types": list(intent.payment_method_types), "return_url": intent.return_url,
        "status": intent.status,
    }


def charge_json(charge: Charge, intent: Intent | None) -> dict[str, Any]:
    return {
        "id": charge.id, "object": "charge", "amount": charge.amount, "amount_captured": charge.amount,
        "amount_refunded": charge.amount_refunded, "balance_transaction": charge.balance_transaction,
        "captured": charge.captured, "created": charge.created, "currency": charge.currency, "livemode": False,
        "metadata": dict(charge.metadata), "paid": True, "payment_intent": charge.payment_intent,
        "payment_method": charge.payment_method, "refunded": charge.amount_refunded >= charge.amount,
        "status": "succeeded", "description": intent.description if intent else None,
    }


def refund_json(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id, "object": "refund", "amount": refund.amount,
        "balance_transaction": refund.balance_transaction, "charge": refund.charge, "created": refund.created,
        "currency": refund.currency, "failure_balance_transaction": refund.failure_balance_transaction,
        "failure_reason": refund.failure_reason, "metadata": dict(refund.metadata),
        "payment_intent": refund.payment_intent, "reason": refund.reason, "status": refund.status,
    }


def balance_transaction_json(txn: BalanceTransaction) -> dict[str, Any]:
    return {
        "id": txn.id, "object": "balance_transaction", "amount": txn.amount, "available_on": txn.available_on,
        "created": txn.created, "currency": txn.currency, "description": txn.description, "fee": txn.fee,
        "net": txn.net, "reporting_category": txn.reporting_category, "source": txn.source, "status": "pending",
        "type": txn.type, "account": txn.account, "payment_intent": txn.payment_intent,
        "payment_metadata": dict(txn.payment_metadata), "refund_metadata": dict(txn.refund_metadata),
    }


def endpoint_json(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id, "object": "webhook_endpoint", "api_version": endpoint.api_version,
        "created": endpoint.created, "enabled_events": list(endpoint.enabled_events), "livemode": False,
        "status": "enabled", "url": endpoint.url,
    }
    if with_secret:  # Stripe shows the secret only in the create answer
        body["secret"] = endpoint.secrets[0][0]
    return body


def list_json(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "url": url, "has_more": has_more, "data": data}


def checkout_session_json(session: CheckoutSession, base_url: str) -> dict[str, Any]:
    """``url`` is set only while the session is open, as Stripe renders it."""
    return {
        "id": session.id, "object": "checkout.session", "amount_subtotal": session.amount_total,
        "amount_total": session.amount_total, "cancel_url": session.cancel_url,
        "client_reference_id": session.client_reference_id, "created": session.created,
        "currency": session.currency, "expires_at": session.expires_at, "livemode": False,
        "metadata": dict(session.metadata), "mode": "payment", "payment_intent": session.payment_intent,
        "payment_method_types": ["card"], "payment_status": session.payment_status, "status": session.status,
        "success_url": session.success_url,
        "url": f"{base_url}/c/pay/{session.id}" if session.status == "open" else None,
    }
