"""Starting and answering a step-up challenge, and registering a payer's platform authenticator.

Limits: a one-time code lives 5 minutes; a payment allows 5 wrong answers in all (kept across new challenges, so
asking for another code does not buy more guesses); at most 5 codes an hour per payer and per phone number. Codes
are 6 digits from ``secrets``, stored only as HMAC-SHA256 under ``otp_hmac_key`` with the challenge id, compared
in constant time and never logged. Passing a create's challenge moves the payment ``requires_step_up`` ->
``pending`` and asks the channel; using up the tries fails it (``payment.failed`` webhook). The payment's
``step_up`` keeps the method, outcome, tries and ``duration_ms`` (from the challenge to the answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.config.settings import settings
from chalicelib.domain.clock import iso, parse_iso, utcnow
from chalicelib.domain.errors import (
    InvalidRequest,
    InvalidState,
    NotFound,
    StepUpFailed,
    StepUpPending,
    StepUpRateLimited,
)
from chalicelib.domain.ids import new_id
from chalicelib.domain.models import Merchant, Payment
from chalicelib.domain.states import PAYMENT_TRANSITIONS, PaymentState
from chalicelib.risk import counters, store
from chalicelib.stepup import records as stepup_records
from chalicelib.stepup.credentials import credential
from chalicelib.storage import outbox, records, state_repo
from chalicelib.storage.sync_index import first_sync
from chalicelib.storage.transaction import Transaction, TransactionConflict

log = logging.getLogger(__name__)
CODE_TTL_S = 300
MAX_TRIES = 5
CODES_PER_HOUR = 5
WEBAUTHN_TTL_S = 300


def _payment(merchant: Merchant, payment_id: str) -> Payment:
    payment = state_repo.get_payment(payment_id)
    if payment is None or payment.merchant_id != merchant.merchant_id:
        raise NotFound(f"no payment {payment_id}", param="payment_id")
    return payment


def _awaiting(payment: Payment) -> dict[str, Any]:
    step_up = payment.step_up or {}
    waiting = (payment.status is PaymentState.REQUIRES_STEP_UP or (
        step_up.get("operation") == "confirm" and payment.status in (PaymentState.PENDING, PaymentState.PROCESSING)))
    if not waiting or step_up.get("status") not in ("required", "started"):
        raise InvalidState(f"payment {payment.payment_id} is not waiting for a step-up", param="payment_id")
    return step_up


def code_hash(challenge_id: str, code: str) -> str:
    key = credential("otp_hmac_key")
    if not key:
        raise InvalidState("one-time codes are not configured (otp_hmac_key)", param="method")
    return hmac.new(key.encode(), f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def binding(payment: Payment, nonce: bytes) -> bytes:
    """The WebAuthn challenge: a fresh nonce bound to what is being paid, so an assertion made for one payment,
    amount or merchant can never confirm another."""
    bound = f"{payment.payment_id}|{payment.amount}|{payment.currency}|{payment.merchant_id}".encode()
    return hashlib.sha256(nonce + b"|" + bound).digest()


def _rp() -> tuple[str, list[str]]:
    providers = store.active().document.providers
    base = settings().public_base_url
    rp_id = providers.webauthn_rp_id or (urlsplit(base).hostname or "localhost")
    return rp_id, list(providers.webauthn_origins) or [base.rstrip("/")]


def start(merchant: Merchant, payment_id: str, method: str, *, phone: str | None = None,
          return_to: str | None = None) -> dict[str, Any]:
    """``return_to``: where the face provider sends the payer back (the hosted checkout page's own return)."""
    payment = _payment(merchant, payment_id)
    step_up = _awaiting(payment)
    if method not in step_up.get("methods", []):
        raise InvalidRequest(f"this payment's step-up is one of {', '.join(step_up.get('methods', []))}",
                             param="method")
    _expire_if_due(payment)
    now = utcnow()
    previous = stepup_records.get_challenge(payment_id) or {}
    challenge: dict[str, Any] = {**stepup_records.challenge_key(payment_id), "challenge_id": new_id("chl"),
                                 "method": method, "operation": step_up["operation"], "status": "open",
                                 "started_at": iso(now), "tries": int(previous.get("tries", 0)),
                                 "deadline_epoch": int(now.timestamp()) + CODE_TTL_S}
    action: dict[str, Any] = {"type": f"step_up_{method}"}
    tx = Transaction()
    if method == "sms":
        if not phone:
            raise InvalidRequest("the phone number the code is sent to", param="phone")
        code = f"{secrets.randbelow(10**6):06d}"
        challenge["code_hash"] = code_hash(challenge["challenge_id"], code)
        challenge["phone_masked"] = phone[:3] + "****" + phone[-4:]
        _rate_limit(tx, payment, phone, now)
        action["phone_masked"] = challenge["phone_masked"]
    elif method == "webauthn":
        user_id = (payment.payer or {}).get("user_id")
        creds = _credentials(merchant.merchant_id, user_id) if user_id else []
        if not creds:
            raise InvalidState("the payer has no registered authenticator", param="method")
        nonce = secrets.token_bytes(32)
        challenge["nonce"] = base64.b64encode(nonce).decode()
        challenge["deadline_epoch"] = int(now.timestamp()) + WEBAUTHN_TTL_S
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

        rp_id, _ = _rp()
        options = generate_authentication_options(
            rp_id=rp_id, challenge=binding(payment, nonce), timeout=WEBAUTHN_TTL_S * 1000,
            allow_credentials=[PublicKeyCredentialDescriptor(id=_b64d(c["credential_id"])) for c in creds],
            user_verification=UserVerificationRequirement.REQUIRED)
        action["public_key"] = json.loads(options_to_json(options))
    else:  # face
        providers = store.active().document.providers
        if not providers.face_base_url:
            raise InvalidState("face verification is not configured", param="method")
        from chalicelib.stepup import face

        biz_token, url = face.start(providers.face_base_url, credential("tencent_secret_id") or "",
                                    credential("tencent_secret_key") or "", rule_id=providers.face_rule_id,
                                    redirect_url=return_to or f"{settings().public_base_url}/v1/payments/{payment_id}")
        challenge["biz_token"] = biz_token
        challenge["url"] = url  # the payer's link to the check, for a page drawn again before they go
        challenge["deadline_epoch"] = int(now.timestamp()) + providers.face_timeout_s
        action["url"] = url
    tx.put("challenge", state_repo.state_table(), challenge)
    tx.update("payment", state_repo.state_table(), records.payment_key(payment_id),
              {"step_up": {**step_up, "status": "started", "method": method, "challenge_id": challenge["challenge_id"],
                           "started_at": challenge["started_at"], "tries": challenge["tries"]}},
              condition="attribute_exists(pk)", condition_values={})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise StepUpRateLimited("too many codes for this payer or phone number; try again later",
                                param="phone") from exc
    if method == "sms":
        _send_sms(phone or "", code)
    log.info("step-up %s started for payment %s: %s", challenge["challenge_id"], payment_id, method)
    return {"payment_id": payment_id, "challenge_id": challenge["challenge_id"], "method": method,
            "expires_at": iso(datetime.fromtimestamp(challenge["deadline_epoch"], UTC)), "action": action}


def _send_sms(phone: str, code: str) -> None:
    providers = store.active().document.providers
    if not providers.sms_base_url:
        raise InvalidState("SMS is not configured", param="method")
    from chalicelib.stepup.sms import send_code

    send_code(providers.sms_base_url, credential("aliyun_access_key_id") or "",
              credential("aliyun_access_key_secret") or "", phone=phone, sign_name=providers.sms_sign_name,
              template_code=providers.sms_template_code, code=code)


def _rate_limit(tx: Transaction, payment: Payment, phone: str, now: datetime) -> None:
    hour = now.strftime("%Y%m%d%H")
    keys = [("phone", phone)]
    user_id = (payment.payer or {}).get("user_id")
    if user_id:
        keys.append(("payer", f"{payment.merchant_id}:{user_id}"))
    for kind, value in keys:
        tx.update(f"rate_{kind}", state_repo.state_table(),
                  {"pk": f"SMSRATE#{kind}#{counters.digest(kind, value)}", "sk": f"H{hour}"},
                  {"expires_at_epoch": int(now.timestamp()) + 7200},
                  condition="attribute_not_exists(sent) OR sent < :max", condition_values={":max": CODES_PER_HOUR},
                  add_values={"sent": 1})


def verify(merchant: Merchant, payment_id: str, *, code: str | None = None,
           assertion: dict[str, Any] | None = None, cvv: str | None = None) -> Payment:
    payment = _payment(merchant, payment_id)
    step_up = _awaiting(payment)
    challenge = stepup_records.get_challenge(payment_id)
    if challenge is None or challenge.get("status") != "open" or challenge["challenge_id"] != step_up.get("challenge_id"):
        raise StepUpFailed("no open challenge for this payment; start one", param="payment_id")
    if time.time() > int(challenge["deadline_epoch"]):
        _close_challenge(challenge, "expired")
        raise StepUpFailed("the challenge expired; start a new one", param="payment_id")
    method = challenge["method"]
    if method == "sms":
        if not code:
            raise InvalidRequest("the one-time code the payer received", param="code")
        passed = hmac.compare_digest(code_hash(challenge["challenge_id"], code), str(challenge["code_hash"]))
        detail: dict[str, Any] = {}
    elif method == "webauthn":
        if not isinstance(assertion, dict):
            raise InvalidRequest("the authenticator's assertion (PublicKeyCredential JSON)", param="credential")
        passed, detail = _check_assertion(payment, challenge, assertion)
    else:
        passed, detail = _check_face(challenge)
        if detail.get("waiting"):
            raise StepUpPending("face verification not finished yet; query again", param="payment_id")
    if not passed:
        return _wrong_answer(payment, challenge, step_up)
    return _passed(payment, challenge, step_up, detail, cvv)


def _close_challenge(challenge: dict[str, Any], status: str) -> None:
    tx = Transaction()
    tx.update("challenge", state_repo.state_table(), stepup_records.challenge_key(challenge["pk"][7:]),
              {"status": status}, condition="#status = :open AND tries = :tries",
              condition_values={":open": "open", ":tries": int(challenge["tries"])})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise StepUpFailed("the challenge was answered meanwhile", param="payment_id") from exc


def _wrong_answer(payment: Payment, challenge: dict[str, Any], step_up: dict[str, Any]) -> Payment:
    tries = int(challenge["tries"]) + 1
    exhausted = tries >= MAX_TRIES
    tx = Transaction()
    tx.update("challenge", state_repo.state_table(), stepup_records.challenge_key(payment.payment_id),
              {"tries": tries, "status": "failed" if exhausted else "open"},
              condition="#status = :open AND tries = :tries",
              condition_values={":open": "open", ":tries": int(challenge["tries"])})
    outcome = {**step_up, "tries": tries}
    if exhausted:
        outcome.update(_finished(challenge, "failed"))
    now = iso(utcnow())
    if exhausted and payment.status is PaymentState.REQUIRES_STEP_UP:
        _fail_held(tx, payment, outcome, now)
    else:
        tx.update("payment", state_repo.state_table(), records.payment_key(payment.payment_id),
                  {"step_up": outcome, "updated_at": now}, condition="attribute_exists(pk)", condition_values={})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise StepUpFailed("the challenge was answered meanwhile", param="payment_id") from exc
    log.info("step-up %s: wrong answer (%d of %d)", challenge["challenge_id"], tries, MAX_TRIES)
    if exhausted and payment.status is not PaymentState.REQUIRES_STEP_UP and payment.current_attempt_id:
        from chalicelib.service import status_sync

        status_sync.close_attempt(payment.current_attempt_id, source="step_up_failed")
    raise StepUpFailed("the step-up answer is wrong" + ("; no tries left, the payment failed" if exhausted else
                                                         f"; {MAX_TRIES - tries} tries left"), param="code")


def _fail_held(tx: Transaction, payment: Payment, outcome: dict[str, Any], now: str) -> None:
    """A held payment never reached a channel: failing it closes its attempt and tells the merchant."""
    changes = {"status": "failed", "failure_reason": "step_up_failed", "step_up": outcome, "updated_at": now}
    state_repo.guard_version(tx, "payment", records.payment_key(payment.payment_id), status=str(payment.status),
                             version=payment.version, changes=changes)
    if payment.current_attempt_id:
        tx.update("attempt", state_repo.state_table(), records.attempt_key(payment.current_attempt_id),
                  {"status": "closed", "raw_status": "STEP_UP_FAILED", "updated_at": now},
                  condition="#status = :pending", condition_values={":pending": "pending"})
    failed = payment.evolve(status=PaymentState.FAILED, failure_reason="step_up_failed", step_up=outcome,
                            updated_at=now, version=payment.version + 1)
    event_type = PAYMENT_TRANSITIONS[(PaymentState.REQUIRES_STEP_UP, PaymentState.FAILED)]
    assert event_type is not None
    outbox.add_event(tx, merchant_id=payment.merchant_id, object_id=payment.payment_id, event_type=event_type,
                     data=failed.public(), now=now)


def _finished(challenge: dict[str, Any], status: str) -> dict[str, Any]:
    now = utcnow()
    started = parse_iso(challenge["started_at"])
    return {"status": status, "completed_at": iso(now),
            "duration_ms": int((now - started).total_seconds() * 1000)}


def _passed(payment: Payment, challenge: dict[str, Any], step_up: dict[str, Any], detail: dict[str, Any],
            cvv: str | None) -> Payment:
    outcome = {**step_up, **_finished(challenge, "passed"), "tries": int(challenge["tries"]), **detail}
    now = utcnow()
    stamp = iso(now)
    tx = Transaction()
    tx.update("challenge", state_repo.state_table(), stepup_records.challenge_key(payment.payment_id),
              {"status": "passed"}, condition="#status = :open AND tries = :tries",
              condition_values={":open": "open", ":tries": int(challenge["tries"])})
    if "credential_update" in detail:
        tx.update("credential", state_repo.state_table(), detail.pop("credential_update"),
                  {"sign_count": outcome.pop("new_sign_count")}, condition="sign_count = :old",
                  condition_values={":old": outcome.pop("old_sign_count")})
        outcome.pop("credential_update", None)
    held = payment.status is PaymentState.REQUIRES_STEP_UP
    if held:
        state_repo.guard_version(tx, "payment", records.payment_key(payment.payment_id), status=str(payment.status),
                                 version=payment.version,
                                 changes={"status": "pending", "step_up": outcome, "updated_at": stamp},
                                 remove=("action",))
        if payment.current_attempt_id:
            tx.update("attempt", state_repo.state_table(), records.attempt_key(payment.current_attempt_id),
                      {**first_sync(now, payment.current_attempt_id), "updated_at": stamp},
                      condition="#status = :pending", condition_values={":pending": "pending"})
    elif step_up.get("attempt_id"):
        # A confirm's step-up: passed only while its attempt is still the payment's (a payer switching attempt in
        # another tab meanwhile has abandoned it; hooks.AttemptRisk).
        tx.update("payment", state_repo.state_table(), records.payment_key(payment.payment_id),
                  {"step_up": outcome, "updated_at": stamp}, condition="current_attempt_id = :attempt",
                  condition_values={":attempt": step_up["attempt_id"]})
    else:
        tx.update("payment", state_repo.state_table(), records.payment_key(payment.payment_id),
                  {"step_up": outcome, "updated_at": stamp}, condition="attribute_exists(pk)", condition_values={})
    try:
        tx.commit()
    except TransactionConflict as exc:  # a replayed or concurrent answer: only one passes
        raise StepUpFailed("the challenge was already answered", param="payment_id") from exc
    log.info("step-up %s passed by %s in %d ms", challenge["challenge_id"], challenge["method"], outcome["duration_ms"])
    if not held:
        fresh = state_repo.get_payment(payment.payment_id)
        assert fresh is not None
        return fresh
    return _resume_create(payment.evolve(status=PaymentState.PENDING, step_up=outcome, version=payment.version + 1,
                                         action=None), cvv)


def _resume_create(payment: Payment, cvv: str | None) -> Payment:
    """Ask the channel for the held payment, with the payer and card it was created with."""
    from chalicelib.service.inputs import CardInput, CreatePaymentInput, PayerInput
    from chalicelib.service.payments import open_after_step_up

    attempt = state_repo.get_attempt(payment.current_attempt_id or "")
    assert attempt is not None
    card = None
    if attempt.card_token:
        from chalicelib.vault.cards import vault

        details = vault().load(attempt.card_token, merchant_id=payment.merchant_id)
        card = CardInput.model_construct(number=details.number, exp_month=details.exp_month,
                                         exp_year=details.exp_year, cvv=cvv, holder_name=details.holder_name,
                                         phone=details.phone, id_type=details.id_type, id_number=details.id_number)
    if payment.session_id is not None:
        # A checkout attempt: a refusal by the channel fails this attempt only and the session stays open for
        # another try (service/next_attempt.py), where a merchant create's refused intent is withdrawn.
        from chalicelib.service import next_attempt

        return next_attempt.open_after_step_up(payment, attempt, payer=dict(payment.payer or {}), card=card)
    body = CreatePaymentInput.model_construct(payer=PayerInput.model_construct(**(payment.payer or {})), card=card,
                                              payment_method=None)
    return open_after_step_up(payment, attempt, body)


def _expire_if_due(payment: Payment) -> None:
    if parse_iso(payment.expires_at) <= utcnow():
        raise InvalidState("the payment expired", param="payment_id")


# --- WebAuthn -----------------------------------------------------------------------------------------------------


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _user_pk(merchant_id: str, user_id: str) -> str:
    return f"{merchant_id}#{counters.digest('payer', user_id)}"


def _credentials(merchant_id: str, user_id: str) -> list[dict[str, Any]]:
    items, _ = state_repo.query("pk = :pk", {":pk": f"WAC#{_user_pk(merchant_id, user_id)}"})
    return items


def has_authenticator(merchant_id: str, user_id: str) -> bool:
    """The payer registered a platform authenticator with this merchant (one Query)."""
    return bool(_credentials(merchant_id, user_id))


def _check_assertion(payment: Payment, challenge: dict[str, Any], assertion: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException

    user_id = (payment.payer or {}).get("user_id") or ""
    raw_id = str(assertion.get("rawId") or assertion.get("id") or "")
    if not raw_id or len(raw_id) > 1024:  # no credential named (or not one we could have stored): not ours
        return False, {}
    stored = state_repo.get_item({"pk": f"WAC#{_user_pk(payment.merchant_id, user_id)}", "sk": raw_id})
    if stored is None:
        return False, {}
    rp_id, origins = _rp()
    try:
        verified = verify_authentication_response(
            credential=assertion, expected_challenge=binding(payment, base64.b64decode(challenge["nonce"])),
            expected_rp_id=rp_id, expected_origin=origins, credential_public_key=_b64d(stored["public_key"]),
            credential_current_sign_count=int(stored["sign_count"]), require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:  # malformed or not verified: refused alike
        log.warning("WebAuthn assertion refused for %s: %s", payment.payment_id, type(exc).__name__)
        return False, {}
    return True, {"credential_update": {"pk": stored["pk"], "sk": stored["sk"]},
                  "new_sign_count": verified.new_sign_count, "old_sign_count": int(stored["sign_count"]),
                  "user_verified": True}


def registration_options(merchant: Merchant, user_id: str) -> dict[str, Any]:
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AuthenticatorAttachment,
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    rp_id, _ = _rp()
    challenge = secrets.token_bytes(32)
    existing = _credentials(merchant.merchant_id, user_id)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=merchant.name, user_name=user_id,
        user_id=hashlib.sha256(_user_pk(merchant.merchant_id, user_id).encode()).digest(), challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=_b64d(c["sk"])) for c in existing])
    tx = Transaction()
    tx.put("registration", state_repo.state_table(),
           {"pk": f"WAREG#{_user_pk(merchant.merchant_id, user_id)}", "sk": "CHALLENGE",
            "challenge": base64.b64encode(challenge).decode(), "expires_at_epoch": int(time.time()) + WEBAUTHN_TTL_S})
    tx.commit()
    return {"public_key": json.loads(options_to_json(options))}


def register(merchant: Merchant, user_id: str, credential_json: dict[str, Any]) -> dict[str, Any]:
    from webauthn import verify_registration_response
    from webauthn.helpers.exceptions import WebAuthnException

    key = {"pk": f"WAREG#{_user_pk(merchant.merchant_id, user_id)}", "sk": "CHALLENGE"}
    pending = state_repo.get_item(key)
    if pending is None or int(pending["expires_at_epoch"]) < time.time():
        raise StepUpFailed("no registration in progress for this payer; ask for options first", param="user_id")
    rp_id, origins = _rp()
    try:
        verified = verify_registration_response(
            credential=credential_json, expected_challenge=base64.b64decode(pending["challenge"]), expected_rp_id=rp_id,
            expected_origin=origins, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:  # malformed or not verified: refused alike
        raise StepUpFailed(f"registration refused: {type(exc).__name__}", param="credential") from exc
    credential_id = _b64e(verified.credential_id)
    tx = Transaction()
    tx.delete("registration", state_repo.state_table(), key, condition="challenge = :c",
              condition_values={":c": pending["challenge"]})
    tx.put_new("credential", state_repo.state_table(), {
        "pk": f"WAC#{_user_pk(merchant.merchant_id, user_id)}", "sk": credential_id, "credential_id": credential_id,
        "public_key": _b64e(verified.credential_public_key), "sign_count": verified.sign_count,
        "created_at": iso(utcnow()), "device_type": str(verified.credential_device_type)})
    try:
        tx.commit()
    except TransactionConflict as exc:
        raise StepUpFailed("this registration was already used", param="credential") from exc
    return {"credential_id": credential_id, "user_id": user_id}


# --- face ---------------------------------------------------------------------------------------------------------


def _check_face(challenge: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    from chalicelib.stepup import face

    providers = store.active().document.providers
    result = face.query(providers.face_base_url or "", credential("tencent_secret_id") or "",
                        credential("tencent_secret_key") or "", rule_id=providers.face_rule_id,
                        biz_token=str(challenge["biz_token"]), min_similarity=providers.face_min_similarity)
    if not result.completed:
        return False, {"waiting": True}
    return result.passed, {"similarity": int(result.similarity), "live": result.live}
