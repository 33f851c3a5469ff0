"""What the payer does on the hosted page: choose (or switch) a method, type an SMS code, come back from a
channel's page, and watch the status. Each step goes through the same services as the merchant API."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.checkout import remembered, sessions, wechat
from chalicelib.checkout.methods import offered, remembered_first
from chalicelib.config.settings import settings
from chalicelib.domain.errors import InvalidRequest, InvalidState, NotFound
from chalicelib.domain.models import Attempt, Merchant, Payment
from chalicelib.domain.states import ATTEMPT_FINAL, AttemptState, PaymentState
from chalicelib.domain.value_class import value_class
from chalicelib.service import confirmation, next_attempt, routing, status_sync
from chalicelib.stepup import on_checkout
from chalicelib.storage import config_repo

if TYPE_CHECKING:
    from chalicelib.checkout.sessions import CheckoutSession
    from chalicelib.service.inputs import CardInput

log = logging.getLogger(__name__)
OPEN_PAYMENT = (PaymentState.PENDING, PaymentState.PROCESSING)
SMS_CONFIRMATION = "sms_verification"  # the action of a card attempt whose bank sent the payer a code


@value_class
class View:
    """Everything the page needs to draw the session as it stands."""

    session: CheckoutSession
    payment: Payment
    attempt: Attempt | None
    methods: list[str]  # offered now, the remembered one first (after a failure, the suggested one)
    remembered_method: str | None
    suggested_method: str | None = None  # after the payer's method failed: what routing offers next
    # Origins the method list's form may be redirected to: choosing WeChat JSAPI goes on to WeChat's authorisation,
    # and browsers hold a form's redirects to the CSP's form-action too.
    form_targets: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        """paid | closed | step_up | failed_attempt | in_progress | choose"""
        if self.payment.status is PaymentState.SUCCEEDED:
            return "paid"
        if self.payment.status in (PaymentState.CLOSED, PaymentState.FAILED) or self.session.expired():
            return "closed"
        if on_checkout.awaiting(self.payment):  # risk control asked for the payer's step-up (chalicelib/stepup/screens.py)
            return "step_up"
        if self.attempt is None:
            return "choose"
        if self.attempt.status in (AttemptState.FAILED, AttemptState.CLOSED):
            return "failed_attempt"
        # Open, or succeeded while the payment read does not show it yet: either way the outcome is on its way, so
        # the page keeps polling. Never "failed": the payer would be told to pay again for money already taken.
        return "in_progress"


def _merchant(session: CheckoutSession) -> Merchant:
    merchant = config_repo.get_merchant(session.merchant_id)
    if merchant is None:
        raise NotFound("the merchant of this session is gone", param="session_id")
    return merchant


def view(session: CheckoutSession, *, with_methods: bool = True, in_wechat: bool = False) -> View:
    payment, attempt = _payment_and_attempt(session)
    user_id = session.payer.get("user_id")
    last = remembered.last_method(session.merchant_id, user_id) if with_methods else None
    methods: list[str] = []
    suggested: str | None = None
    if with_methods and payment.status is PaymentState.PENDING and not session.expired():
        methods = remembered_first(offered(session.allowed_methods, session.currency, session.merchant_id,
                                           payer=session.payer, in_wechat=in_wechat), last)
        if attempt is not None and attempt.status in ATTEMPT_FINAL and len(methods) > 1:
            # The payer's method just failed: routing's next offer (another channel when there is one) comes first.
            offer = routing.next_offer(session.merchant_id, session.currency, session.amount, methods,
                                       [attempt.method], payer_id=session.payer.get("user_id"),
                                       city=session.payer.get("city"))
            if offer is not None:
                suggested = offer.method
                methods = [suggested, *(m for m in methods if m != suggested)]
    targets = (wechat.authorisation_origin(session.currency, session.merchant_id),) if wechat.JSAPI in methods else ()
    return View(session, payment, attempt, methods, last, suggested, tuple(t for t in targets if t))


def _payment_and_attempt(session: CheckoutSession) -> tuple[Payment, Attempt | None]:
    """The payment and its current attempt as one moment.

    They are two reads, and a callback or a status query can commit between them. Its transaction moves the attempt
    and the payment together, so an attempt read as final beside a payment read as open means the payment is stale:
    read it again (a strongly consistent read after the attempt's sees that same transaction). Drawn from the stale
    pair, a bank's success landing just before the confirmation's answer looked like a failed attempt: the page
    offered the methods again and stopped polling, and only a reload showed the success.
    """
    payment = sessions.settle_expiry(session)
    attempt = sessions.current_attempt(payment)
    if attempt is not None and attempt.status in ATTEMPT_FINAL and payment.status in OPEN_PAYMENT:
        payment = sessions.payment_of(session)
        if payment.current_attempt_id != attempt.attempt_id:  # another tab switched method meanwhile
            attempt = sessions.current_attempt(payment)
    return payment, attempt


def return_url(session: CheckoutSession, key: str) -> str:
    return f"{settings().public_base_url}/checkout/{session.session_id}/{key}/return"


def pay(session: CheckoutSession, key: str, method: str, *, remember: bool, card: CardInput | None,
        in_wechat: bool = False, openid: wechat.Openid | None = None, instalments: int | None = None) -> Payment:
    """Open ``method`` as the payment's attempt (closing the open one at its channel first). With ``openid`` (JSAPI),
    the attempt goes to the account that openid belongs to, not to whatever routing chooses by then.
    ``instalments``: the number of instalments the payer chose on the page (the payer pays the fee: the page shows
    it); refused naming ``instalments.count`` when the merchant's fee table does not offer it for this amount."""
    current = view(session, in_wechat=in_wechat)
    if current.state == "paid":
        return current.payment
    if current.state == "closed":
        raise InvalidState("this checkout has expired", param="session_id")
    if method not in current.methods:
        raise InvalidRequest(f"{method!r} is not offered for this checkout", param="method")
    merchant = _merchant(session)
    user_id = session.payer.get("user_id")
    if remember and user_id:
        remembered.remember(session.merchant_id, user_id, method)
    payer_context = {**session.payer, "openid": openid.value} if openid else session.payer
    schedule = None
    if instalments is not None:
        from chalicelib.service import instalments as fee_tables

        schedule = fee_tables.plan(session.merchant_id, method, session.amount, session.currency, instalments,
                                   "buyer").public()
    return next_attempt.open_next_attempt(
        merchant, session.payment_id, method=method, payer=payer_context, return_url=return_url(session, key),
        card=card, step_ups=on_checkout.usable(session),
        records_with=lambda attempt: [
            sessions.attempt_index_item(session.session_id, attempt.attempt_id, method, attempt.created_at)],
        account_id=openid.account_id if openid else None, instalments=schedule)


def instalment_offers(session: CheckoutSession, methods: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The instalment terms the page offers, by channel (``alipay`` Huabei, ``unionpay`` card), for the channels of
    the methods shown: each term's schedule as the payer would repay it. Empty when no fee table offers any."""
    from chalicelib.domain.instalments import INSTALMENT_METHODS
    from chalicelib.service import instalments as fee_tables

    found: dict[str, list[dict[str, Any]]] = {}
    for method in methods:
        channel = INSTALMENT_METHODS.get(method)
        if channel is None or channel in found:
            continue
        offers = fee_tables.offered(session.merchant_id, method, session.amount, session.currency)
        if offers:
            found[channel] = [offer.public() for offer in offers]
    return found


def wechat_authorisation(session: CheckoutSession, key: str, *, remember: bool
                         ) -> tuple[wechat.Openid | None, str | None]:
    """Before a JSAPI attempt: ``(openid, None)`` when the payer's openid is known for the appid of the account routing
    chooses now, else ``(None, url)`` to send the payer through WeChat's web authorisation under that account."""
    account = routing.choose_account(wechat.JSAPI, session.currency, session.merchant_id)
    openid = wechat.known_openid(session, account)
    if openid:
        return openid, None
    return None, wechat.authorise_url(session, key, account, remember=remember)


def pay_after_authorisation(session: CheckoutSession, key: str, *, state: str, code: str) -> Payment:
    """Back from WeChat's web authorisation: check the state, learn the openid, open the JSAPI attempt."""
    held = wechat.take_state(session, state)
    openid = wechat.learn_openid(session, str(held["account_id"]), code)
    return pay(session, key, wechat.JSAPI, remember=bool(held.get("remember")), card=None, in_wechat=True,
               openid=openid)


def confirm(session: CheckoutSession, *, sms_code: str, cvv: str | None) -> Payment:
    """The page's one confirmation: the bank's SMS code for a card attempt. Posted for anything else (by hand, or from
    a stale tab after a switch) it is refused before risk control decides on it: a confirm rule must not hold a
    WeChat or Alipay payment for a step-up over a confirmation that its channel does not have."""
    from chalicelib.service.inputs import ConfirmPaymentInput

    action = sessions.payment_of(session).action or {}
    if action.get("type") != SMS_CONFIRMATION:
        raise InvalidState("nothing on this payment waits for a code from the payer", param="sms_code")
    body = ConfirmPaymentInput(sms_code=sms_code, cvv=cvv)
    return confirmation.confirm_payment(_merchant(session), session.payment_id, body)


def came_back(session: CheckoutSession) -> None:
    """The payer is back from a channel's page: look at the attempt now (a PayPal approval is captured, a 3-D
    Secure result confirmed) rather than wait for status sync. Errors leave it to status sync."""
    payment = sessions.payment_of(session)
    if on_checkout.awaiting(payment):  # back from the face provider's page
        on_checkout.face_returned(session)
        return
    if payment.status in (PaymentState.PENDING, PaymentState.PROCESSING) and payment.current_attempt_id:
        try:
            status_sync.sync_attempt(payment.current_attempt_id)
        except Exception:  # noqa: BLE001 - the page shows the status as it stands; status sync retries
            log.exception("query on the payer's return failed for %s", payment.current_attempt_id)


def forget(session: CheckoutSession) -> None:
    user_id = session.payer.get("user_id")
    if user_id:
        remembered.forget(session.merchant_id, user_id)


def status(session: CheckoutSession) -> dict[str, Any]:
    """The small document the page polls: enough to know when to redraw."""
    current = view(session, with_methods=False)
    return {"state": current.state, "payment_status": str(current.payment.status),
            "attempt_id": current.attempt.attempt_id if current.attempt else None,
            "attempt_status": str(current.attempt.status) if current.attempt else None}
