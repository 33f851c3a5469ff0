"""The sandbox's books behind one lock: accounts, PaymentIntents, charges, refunds, the balance ledger and
webhook endpoints. Every change happens under the lock; the events it causes are published after the lock is
released, in the order they happened. Readers get copies, never the live records.

PaymentIntent life (docs.stripe.com/payments/paymentintents/lifecycle, docs/channels/stripe.md#paymentintent-lifecycle):
requires_payment_method -> [confirm] -> requires_action (3-D Secure) -> payer authenticates ->
requires_confirmation (manual confirmation: the server confirms again) -> succeeded; a decline or a failed
challenge goes back to requires_payment_method with ``last_payment_error``; cancel -> canceled.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .currencies import fee_for
from .errors import CardError, InvalidRequest, NotFound, Refused, StripeError, UnexpectedState
from .records import (
    TEST_CARDS,
    Account,
    BalanceTransaction,
    Charge,
    Intent,
    Refund,
    TestCard,
    WebhookEndpoint,
)
from .resources import charge_json, intent_json, refund_json

Publish = Callable[[str, str, dict[str, Any]], None]  # (account id, event type, object JSON)
AVAILABLE_AFTER_S = 2 * 86_400
_CANCELABLE = frozenset({"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action"})


class IllegalTransition(Exception):
    """A payer action the intent's state does not allow (a control-API 409)."""


def token(prefix: str, length: int = 24) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True, slots=True)
class IntentParams:
    amount: int
    currency: str
    description: str | None
    metadata: dict[str, str]
    payment_method_types: list[str]
    confirmation_method: str
    capture_method: str
    payment_method: str | None
    return_url: str | None


class SandboxState:
    def __init__(self, publish: Publish, *, search_lag_s: float = 0.0) -> None:
        self._lock = threading.RLock()
        self._publish = publish
        self._search_lag_s = search_lag_s
        self.base_url = ""
        self.accounts: dict[str, Account] = {}
        self._keys: dict[str, str] = {}
        self.intents: dict[str, Intent] = {}
        self._intent_seen_at: dict[str, float] = {}
        self.charges: dict[str, Charge] = {}
        self.refunds: dict[str, Refund] = {}
        self.ledger: list[BalanceTransaction] = []
        self.endpoints: dict[str, WebhookEndpoint] = {}
        self._seq = itertools.count(1)

    def _flush(self, events: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        for account, event_type, obj in events:
            self._publish(account, event_type, obj)

    # -- accounts and keys ------------------------------------------------------------------------------------

    def register_account(self, merchant_id: str | None, *, connect: bool, fee_rate_bps: int,
                         fixed_fee: int) -> tuple[Account, str]:
        """Create the account, or issue a further secret key for an existing one. Returns (account, new key)."""
        with self._lock:
            account_id = merchant_id or token("acct_", 16)
            account = self.accounts.get(account_id)
            if account is None:
                account = Account(account_id, [], token("pk_test_"), connect, fee_rate_bps, fixed_fee, int(time.time()))
                self.accounts[account_id] = account
            account.connect, account.fee_rate_bps, account.fixed_fee = connect, fee_rate_bps, fixed_fee
            secret_key = token("sk_test_", 32)
            account.secret_keys.append(secret_key)
            self._keys[secret_key] = account_id
            return copy.deepcopy(account), secret_key

    def account_for_key(self, secret_key: str) -> Account | None:
        with self._lock:
            account_id = self._keys.get(secret_key)
            return copy.deepcopy(self.accounts[account_id]) if account_id else None

    def account(self, account_id: str) -> Account | None:
        with self._lock:
            found = self.accounts.get(account_id)
            return copy.deepcopy(found) if found else None

    # -- PaymentIntents ------------------------------------------------------------------------------------------

    def create_intent(self, account: str, params: IntentParams, *, confirm: bool) -> Intent:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            intent = Intent(
                id=token("pi_"), account=account, amount=params.amount, currency=params.currency,
                client_secret="", created=int(time.time()), description=params.description,
                metadata=dict(params.metadata), payment_method_types=list(params.payment_method_types),
                confirmation_method=params.confirmation_method, capture_method=params.capture_method,
                payment_method=params.payment_method, return_url=params.return_url,
            )
            intent.client_secret = f"{intent.id}_secret_{token('', 25)}"
            self.intents[intent.id] = intent
            self._intent_seen_at[intent.id] = time.monotonic()
            events.append((account, "payment_intent.created", intent_json(intent)))
            declined = self._confirm(intent, events) if confirm else None
            snapshot = copy.deepcopy(intent)
        self._flush(events)
        if declined:
            raise declined
        return snapshot

    def confirm_intent(self, account: str, intent_id: str, payment_method: str | None, return_url: str | None) -> Intent:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            intent = self._intent(account, intent_id)
            if intent.status not in ("requires_payment_method", "requires_confirmation"):
                raise UnexpectedState(f"You cannot confirm this PaymentIntent because it has a status of {intent.status}.")
            if payment_method and payment_method != intent.payment_method:
                intent.payment_method, intent.authenticated = payment_method, False
            if return_url:
                intent.return_url = return_url
            if intent.payment_method is None:
                raise UnexpectedState("You cannot confirm this PaymentIntent because it's missing a payment method.")
            declined = self._confirm(intent, events)
            snapshot = copy.deepcopy(intent)
        self._flush(events)
        if declined:
            raise declined
        return snapshot

    def _confirm(self, intent: Intent, events: list[tuple[str, str, dict[str, Any]]]) -> StripeError | None:
        """Lock held. Decline -> the CardError to raise once events are out; 3-D Secure -> requires_action."""
        assert intent.payment_method is not None
        card = TEST_CARDS[intent.payment_method]
        if card.decline_code:
            self._fail(intent, {"type": "card_error", "code": card.error_code, "decline_code": card.decline_code,
                                "message": "Your card was declined.", "payment_method": {"id": intent.payment_method}},
                       events)
            return CardError("Your card was declined.", code=card.error_code, decline_code=card.decline_code,
                             extra={"payment_intent": intent_json(intent)})
        if card.three_ds and not intent.authenticated:
            intent.status, intent.last_payment_error = "requires_action", None
            intent.next_action = self._three_ds_next_action(intent)
            events.append((intent.account, "payment_intent.requires_action", intent_json(intent)))
            return None
        self._charge(intent, card, events)
        return None

    def _three_ds_next_action(self, intent: Intent) -> dict[str, Any]:
        url = f"{self.base_url}/three_d_secure/authenticate/{intent.id}?client_secret={intent.client_secret}"
        if intent.return_url:
            return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": intent.return_url}}
        return {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": url}}

    def _fail(self, intent: Intent, error: dict[str, Any], events: list[tuple[str, str, dict[str, Any]]]) -> None:
        intent.status, intent.next_action, intent.last_payment_error = "requires_payment_method", None, error
        intent.authenticated = False
        events.append((intent.account, "payment_intent.payment_failed", intent_json(intent)))

    def _charge(self, intent: Intent, card: TestCard, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        assert intent.payment_method is not None
        charge = Charge(id=token("ch_"), account=intent.account, payment_intent=intent.id, amount=intent.amount,
                        currency=intent.currency, created=int(time.time()), payment_method=intent.payment_method,
                        metadata=dict(intent.metadata), captured=intent.capture_method == "automatic",
                        refund_fails=card.refund_fails)
        self.charges[charge.id] = charge
        intent.latest_charge, intent.next_action, intent.last_payment_error = charge.id, None, None
        if not charge.captured:
            intent.status, intent.amount_capturable = "requires_capture", intent.amount
            events.append((intent.account, "payment_intent.amount_capturable_updated", intent_json(intent)))
            return
        self._settle_charge(intent, charge, events)

    def _settle_charge(self, intent: Intent, charge: Charge, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        account = self.accounts[intent.account]
        txn = self._book(intent, charge, amount=charge.amount, type_="charge", source=charge.id,
                         fee=fee_for(charge.amount, charge.currency, account.fee_rate_bps, account.fixed_fee))
        charge.balance_transaction, charge.captured = txn.id, True
        intent.status, intent.amount_received, intent.amount_capturable = "succeeded", charge.amount, 0
        events.append((intent.account, "charge.succeeded", charge_json(charge, intent)))
        events.append((intent.account, "payment_intent.succeeded", intent_json(intent)))

    def capture_intent(self, account: str, intent_id: str, amount_to_capture: int | None) -> Intent:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            intent = self._intent(account, intent_id)
            if intent.status != "requires_capture" or intent.latest_charge is None:
                raise UnexpectedState(f"This PaymentIntent could not be captured because it has a status of {intent.status}.")
            if amount_to_capture is not None and amount_to_capture != intent.amount:
                raise InvalidRequest("The sandbox captures the full amount only.", param="amount_to_capture")
            self._settle_charge(intent, self.charges[intent.latest_charge], events)
            snapshot = copy.deepcopy(intent)
        self._flush(events)
        return snapshot

    def cancel_intent(self, account: str, intent_id: str, reason: str | None) -> Intent:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            intent = self._intent(account, intent_id)
            if intent.status not in _CANCELABLE:
                raise UnexpectedState(f"You cannot cancel this PaymentIntent because it has a status of {intent.status}.")
            intent.status, intent.next_action = "canceled", None
            intent.canceled_at, intent.cancellation_reason = int(time.time()), reason
            events.append((account, "payment_intent.canceled", intent_json(intent)))
            snapshot = copy.deepcopy(intent)
        self._flush(events)
        return snapshot

    def intent(self, account: str, intent_id: str) -> Intent:
        with self._lock:
            return copy.deepcopy(self._intent(account, intent_id))

    def _intent(self, account: str, intent_id: str) -> Intent:
        intent = self.intents.get(intent_id)
        if intent is None or intent.account != account or intent.forgotten:
            raise NotFound(f"No such payment_intent: '{intent_id}'", param="intent")
        return intent

    def list_intents(self, account: str) -> list[Intent]:
        """Newest first, as Stripe lists."""
        with self._lock:
            found = [i for i in self.intents.values() if i.account == account and not i.forgotten]
            return [copy.deepcopy(i) for i in reversed(found)]

    def searchable_intents(self, account: str) -> list[Intent]:
        """What the (eventually consistent) search index holds now: intents older than the lag."""
        cutoff = time.monotonic() - self._search_lag_s
        return [i for i in self.list_intents(account) if self._intent_seen_at.get(i.id, 0.0) <= cutoff]

    # -- the payer's side (3-D Secure page and control API) ------------------------------------------------------

    def find_intent(self, intent_id: str) -> Intent | None:
        with self._lock:
            found = self.intents.get(intent_id)
            return copy.deepcopy(found) if found and not found.forgotten else None

    def intent_metadata(self, intent_id: str) -> dict[str, str]:
        with self._lock:
            found = self.intents.get(intent_id)
            return dict(found.metadata) if found else {}

    def intents_for_attempt(self, attempt_id: str) -> list[Intent]:
        with self._lock:
            return [copy.deepcopy(i) for i in self.intents.values() if i.metadata.get("attempt_id") == attempt_id]

    def complete_three_ds(self, intent_id: str, succeeded: bool, client_secret: str | None = None) -> Intent:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            intent = self.intents.get(intent_id)
            if intent is None or (client_secret is not None and client_secret != intent.client_secret):
                raise IllegalTransition("unknown PaymentIntent or wrong client secret")
            if intent.status != "requires_action":
                raise IllegalTransition(f"PaymentIntent {intent_id} is {intent.status}, not waiting for 3-D Secure")
            self._after_challenge(intent, succeeded, events)
            snapshot = copy.deepcopy(intent)
        self._flush(events)
        return snapshot

    def _after_challenge(self, intent: Intent, succeeded: bool, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        if not succeeded:
            self._fail(intent, {"type": "card_error", "code": "payment_intent_authentication_failure",
                                "message": "The provided PaymentMethod has failed authentication.",
                                "payment_method": {"id": intent.payment_method}}, events)
            return
        intent.authenticated, intent.next_action = True, None
        if intent.confirmation_method == "manual":
            intent.status = "requires_confirmation"  # no event: the merchant's server confirms next
            return
        assert intent.payment_method is not None
        self._charge(intent, TEST_CARDS[intent.payment_method], events)

    def payer_pays(self, intent_id: str, succeeded: bool) -> Intent:
        """Everything the payer does: pass or fail 3-D Secure, or type a card into Stripe.js and confirm."""
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            intent = self.intents.get(intent_id)
            if intent is None or intent.forgotten:
                raise IllegalTransition(f"no PaymentIntent {intent_id}")
            if intent.status == "requires_action":
                self._after_challenge(intent, succeeded, events)
            elif intent.status == "requires_payment_method":
                intent.payment_method = "pm_card_visa" if succeeded else "pm_card_chargeDeclined"
                intent.authenticated = False
                self._confirm(intent, events)  # a decline is recorded on the intent; no API caller to answer
            else:
                raise IllegalTransition(f"PaymentIntent {intent_id} is {intent.status}: nothing left for the payer")
            snapshot = copy.deepcopy(intent)
        self._flush(events)
        return snapshot

    def forget(self, intent_id: str) -> None:
        with self._lock:
            self.intents[intent_id].forgotten = True

    # -- refunds ---------------------------------------------------------------------------------------------------

    def create_refund(self, account: str, intent_id: str | None, charge_id: str | None, amount: int | None,
                      reason: str | None, metadata: dict[str, str]) -> Refund:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            charge, intent = self._refundable(account, intent_id, charge_id)
            remaining = charge.amount - charge.amount_refunded
            if remaining <= 0:
                raise Refused(f"Charge {charge.id} has already been refunded.", code="charge_already_refunded")
            wanted = remaining if amount is None else amount
            if wanted > remaining:
                raise Refused(f"Refund amount ({wanted}) is greater than unrefunded amount on charge ({remaining})",
                              code="amount_too_large", param="amount")
            refund = Refund(id=token("re_"), account=account, amount=wanted, currency=charge.currency, charge=charge.id,
                            payment_intent=intent.id, created=int(time.time()), metadata=dict(metadata), reason=reason)
            self.refunds[refund.id] = refund
            charge.amount_refunded += wanted
            refund.balance_transaction = self._book(intent, charge, amount=-wanted, type_="refund", source=refund.id,
                                                    fee=0, refund=refund).id
            events.append((account, "refund.created", refund_json(refund)))
            events.append((account, "charge.refunded", charge_json(charge, intent)))
            snapshot = copy.deepcopy(refund)
        self._flush(events)
        return snapshot

    def _refundable(self, account: str, intent_id: str | None, charge_id: str | None) -> tuple[Charge, Intent]:
        if intent_id:
            intent = self._intent(account, intent_id)
            charge = self.charges.get(intent.latest_charge or "")
        else:
            charge = self.charges.get(charge_id or "")
            if charge is None or charge.account != account:
                raise NotFound(f"No such charge: '{charge_id}'", param="charge")
            intent = self._intent(account, charge.payment_intent)
        if intent.status != "succeeded" or charge is None:
            raise Refused(f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                          code="charge_not_refundable")
        return charge, intent

    def settle_refund(self, refund_id: str) -> Refund | None:
        """A pending refund reaches the card: succeeded, or failed when the test card makes refunds fail."""
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            refund = self.refunds.get(refund_id)
            if refund is None or refund.status != "pending":
                return None
            if self.charges[refund.charge].refund_fails:
                self._fail_refund(refund, "expired_or_canceled_card", events)
            else:
                refund.status = "succeeded"
                events.append((refund.account, "refund.updated", refund_json(refund)))
            snapshot = copy.deepcopy(refund)
        self._flush(events)
        return snapshot

    def fail_refund(self, refund_id: str, reason: str) -> Refund:
        events: list[tuple[str, str, dict[str, Any]]] = []
        with self._lock:
            refund = self.refunds.get(refund_id)
            if refund is None:
                raise IllegalTransition(f"no refund {refund_id}")
            if refund.status not in ("pending", "succeeded"):
                raise IllegalTransition(f"refund {refund_id} is {refund.status}")
            self._fail_refund(refund, reason, events)
            snapshot = copy.deepcopy(refund)
        self._flush(events)
        return snapshot

    def _fail_refund(self, refund: Refund, reason: str, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        charge, intent = self.charges[refund.charge], self.intents[refund.payment_intent]
        refund.status, refund.failure_reason = "failed", reason
        charge.amount_refunded -= refund.amount
        refund.failure_balance_transaction = self._book(intent, charge, amount=refund.amount, type_="refund_failure",
                                                        source=refund.id, fee=0, refund=refund).id
        events.append((refund.account, "refund.updated", refund_json(refund)))
        events.append((refund.account, "refund.failed", refund_json(refund)))

    def refund(self, account: str, refund_id: str) -> Refund:
        with self._lock:
            refund = self.refunds.get(refund_id)
            if refund is None or refund.account != account or self.intents[refund.payment_intent].forgotten:
                raise NotFound(f"No such refund: '{refund_id}'", param="id")
            return copy.deepcopy(refund)

    def list_refunds(self, account: str, intent_id: str | None, charge_id: str | None) -> list[Refund]:
        with self._lock:
            found = [r for r in self.refunds.values()
                     if r.account == account and not self.intents[r.payment_intent].forgotten
                     and (intent_id is None or r.payment_intent == intent_id) and (charge_id is None or r.charge == charge_id)]
            return [copy.deepcopy(r) for r in reversed(found)]

    def refund_by_our_id(self, our_refund_id: str) -> Refund | None:
        with self._lock:
            for refund in self.refunds.values():
                if refund.id == our_refund_id or refund.metadata.get("refund_id") == our_refund_id:
                    return copy.deepcopy(refund)
            return None

    def charge(self, charge_id: str) -> Charge | None:
        with self._lock:
            found = self.charges.get(charge_id)
            return copy.deepcopy(found) if found else None

    # -- ledger ------------------------------------------------------------------------------------------------------

    def _book(self, intent: Intent, charge: Charge, *, amount: int, type_: str, source: str, fee: int,
              refund: Refund | None = None) -> BalanceTransaction:
        created = int(time.time())
        txn = BalanceTransaction(
            id=token("txn_"), account=intent.account, amount=amount, currency=charge.currency, fee=fee, type=type_,
            reporting_category=type_, source=source, created=created,
            available_on=(created // 86_400) * 86_400 + AVAILABLE_AFTER_S,
            description=intent.description if type_ == "charge" else f"REFUND FOR CHARGE ({intent.description or ''})",
            payment_intent=intent.id, charge=charge.id, payment_metadata=dict(intent.metadata),
            refund_metadata=dict(refund.metadata) if refund else {},
        )
        self.ledger.append(txn)
        return txn

    def ledger_entries(self, account: str | None = None, start: int | None = None,
                       end: int | None = None) -> list[BalanceTransaction]:
        """Balance transactions, oldest first, without those of forgotten intents; ``[start, end)`` if given."""
        with self._lock:
            return [t for t in self.ledger
                    if (account is None or t.account == account) and not self.intents[t.payment_intent].forgotten
                    and (start is None or t.created >= start) and (end is None or t.created < end)]

    # -- webhook endpoints ---------------------------------------------------------------------------------------

    def create_endpoint(self, account: str, url: str, enabled_events: list[str], api_version: str | None) -> WebhookEndpoint:
        with self._lock:
            endpoint = WebhookEndpoint(id=token("we_"), account=account, url=url, enabled_events=list(enabled_events),
                                       created=int(time.time()), api_version=api_version)
            endpoint.secrets.append((token("whsec_", 32), None))
            self.endpoints[endpoint.id] = endpoint
            return copy.deepcopy(endpoint)

    def endpoint(self, account: str | None, endpoint_id: str) -> WebhookEndpoint:
        with self._lock:
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is None or (account is not None and endpoint.account != account):
                raise NotFound(f"No such webhook endpoint: '{endpoint_id}'", param="id")
            return copy.deepcopy(endpoint)

    def list_endpoints(self, account: str) -> list[WebhookEndpoint]:
        with self._lock:
            return [copy.deepcopy(e) for e in reversed(self.endpoints.values()) if e.account == account]

    def delete_endpoint(self, account: str, endpoint_id: str) -> None:
        with self._lock:
            self.endpoint(account, endpoint_id)
            del self.endpoints[endpoint_id]

    def roll_endpoint_secret(self, endpoint_id: str, expire_old_in_s: float) -> WebhookEndpoint:
        """The Dashboard's "Roll secret": a new secret signs from now on; the old ones keep signing until they expire."""
        with self._lock:
            endpoint = self.endpoint(None, endpoint_id)
            live = self.endpoints[endpoint_id]
            expires = time.time() + expire_old_in_s
            live.secrets = [(token("whsec_", 32), None)] + [
                (secret, expires if old is None else min(old, expires)) for secret, old in endpoint.secrets]
            return copy.deepcopy(live)

    def endpoints_for(self, account: str, event_type: str) -> list[WebhookEndpoint]:
        with self._lock:
            return [copy.deepcopy(e) for e in self.endpoints.values() if e.account == account and e.wants(event_type)]
