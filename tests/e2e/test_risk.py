"""Risk decisions and step-up through the merchant API, against the providers' sandbox (Sift, Aliyun SMS,
Tencent FaceID) and a software WebAuthn authenticator."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.risk_kit import SoftAuthenticator


@pytest.fixture(scope="module")
def providers(stack):
    from chalicelib.storage.config_repo import put_secret
    from sandbox.riskproviders.server import RiskProvidersSandbox

    box = RiskProvidersSandbox()
    box.start()
    put_secret("payhub/local/risk/providers", {
        "sift_api_key": box.sift_api_key, "aliyun_access_key_id": box.aliyun_id,
        "aliyun_access_key_secret": box.aliyun_secret, "tencent_secret_id": box.tencent_id,
        "tencent_secret_key": box.tencent_key, "otp_hmac_key": uuid.uuid4().hex + uuid.uuid4().hex})
    yield box
    box.stop()
    rules({"rules": []}, box)


def rules(document: dict[str, Any], box: Any) -> int:
    from chalicelib.risk import store

    document.setdefault("providers", {}).update({
        "risk_base_url": box.url, "risk_budget_ms": 300, "sms_base_url": f"{box.url}/sms",
        "sms_sign_name": "PayHub", "sms_template_code": "SMS_0001", "face_base_url": f"{box.url}/faceid",
        "face_rule_id": "1"})
    return store.put_document(document, put_by="test")


def user() -> dict[str, str]:
    return {"user_id": f"u{uuid.uuid4().hex[:10]}", "device_id": f"d{uuid.uuid4().hex[:8]}", "ip": "203.0.113.9",
            "city": "Shanghai"}


def rule(rule_id: str, expr: str, action: str, **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "expr": expr, "action": action, "mode": "enforce", **extra}


def test_deny_is_402_and_leaves_only_the_decision(merchant, providers):
    payer = user()
    rules({"rules": [rule("blocked", "lists.blocked", "deny", score=100, reason="blocked payer")],
           "blocklist": {"user_id": [payer["user_id"]]}}, providers)
    answer = merchant.call("POST", "/v1/payments", {"merchant_order_no": "deny1", "amount": 100, "currency": "CNY",
                                                    "description": "x", "method": "wechat.native", "payer": payer})
    assert answer.status_code == 402, answer.text
    assert answer.json()["error"]["code"] == "risk_denied"
    assert merchant.call("GET", "/v1/payments?merchant_order_no=deny1").status_code == 404
    from chalicelib.risk.inspect import decisions_for_request

    assert decisions_for_request(answer.json()["error"]["message"])["action"] == "deny"


def test_shadow_rule_is_recorded_not_enforced(merchant, providers):
    rules({"rules": [{**rule("watch", "amount > 50", "deny", reason="watching"), "mode": "shadow"}]}, providers)
    payment = merchant.create_payment(payer=user())
    assert payment["status"] == "pending"
    from chalicelib.storage import state_repo

    stored = state_repo.get_payment(payment["id"])
    assert stored.risk["create"]["action"] == "allow"
    assert stored.risk["create"]["shadow_action"] == "deny"
    assert [r["rule"] for r in stored.risk["create"]["shadow"]] == ["watch"]


def test_new_rules_are_live_at_once_with_no_cache(merchant, providers):
    rules({"rules": []}, providers)
    assert merchant.create_payment(amount=777, payer=user())["status"] == "pending"
    version = rules({"rules": [rule("no777", "amount == 777", "deny")]}, providers)
    answer = merchant.call("POST", "/v1/payments", {"merchant_order_no": uuid.uuid4().hex[:12], "amount": 777,
                                                    "currency": "CNY", "description": "x", "method": "wechat.native"})
    assert answer.status_code == 402
    from chalicelib.risk import store

    assert store.active().version == version


def test_velocity_per_payer_challenges_the_fourth_payment(merchant, providers):
    rules({"rules": [rule("fast", "velocity.payer.count_10m >= 3", "challenge", step_up=["sms"])]}, providers)
    payer = user()
    for _ in range(3):
        assert merchant.create_payment(payer=payer)["status"] == "pending"
    held = merchant.create_payment(payer=payer)
    assert held["status"] == "requires_step_up"
    assert held["action"] == {"type": "step_up", "methods": ["sms"]}
    assert held["step_up"]["status"] == "required"
    assert merchant.create_payment(payer=user())["status"] == "pending"  # another payer is not slowed


def test_unusual_city_and_new_device_features(merchant, providers):
    rules({"rules": [rule("elsewhere", "city.unusual", "review"),
                     rule("newdev", "device.new && payer.known && amount >= 5000", "challenge", step_up=["sms"])]},
          providers)
    payer = user()
    for _ in range(2):
        merchant.create_payment(payer=payer)
    from chalicelib.storage import state_repo

    moved = merchant.create_payment(payer={**payer, "city": "Urumqi"})
    assert state_repo.get_payment(moved["id"]).risk["create"]["action"] == "review"
    big = merchant.create_payment(amount=6000, payer={**payer, "device_id": "other-phone"})
    assert big["status"] == "requires_step_up"


def _held(merchant, providers, methods=("sms",)) -> tuple[dict[str, Any], dict[str, str]]:
    rules({"rules": [rule("always", "amount >= 4242", "challenge", step_up=list(methods))]}, providers)
    payer = user()
    held = merchant.create_payment(amount=4242, payer=payer)
    assert held["status"] == "requires_step_up"
    return held, payer


def test_sms_step_up_passes_and_the_payment_goes_to_the_channel(merchant, providers, caplog):
    held, _ = _held(merchant, providers)
    phone = f"+86138{uuid.uuid4().int % 10**8:08d}"
    started = merchant.call("POST", f"/v1/payments/{held['id']}/step_up", {"method": "sms", "phone": phone})
    assert started.status_code == 200, started.text
    code = providers.codes_for(phone)[-1]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {"code": wrong})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "step_up_failed"
    passed = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {"code": code})
    assert passed.status_code == 200, passed.text
    body = passed.json()
    assert body["status"] == "pending" and body["action"]["type"] == "qr_code"
    assert body["step_up"]["status"] == "passed" and body["step_up"]["method"] == "sms"
    assert body["step_up"]["tries"] == 1 and body["step_up"]["duration_ms"] >= 0
    assert code not in caplog.text  # the code is never logged
    again = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {"code": code})
    assert again.status_code == 409  # no longer waiting: a replay does nothing


def test_five_wrong_codes_fail_the_payment_and_the_webhook_says_so(merchant, providers, drain, stack):
    held, _ = _held(merchant, providers)
    phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
    merchant.call("POST", f"/v1/payments/{held['id']}/step_up", {"method": "sms", "phone": phone})
    code = providers.codes_for(phone)[-1]
    for i in range(5):
        wrong = f"{(int(code) + 1 + i) % 10**6:06d}"
        answer = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {"code": wrong})
        assert answer.status_code == 422
    payment = merchant.get(f"/v1/payments/{held['id']}")
    assert payment["status"] == "failed" and payment["failure_reason"] == "step_up_failed"
    assert payment["step_up"]["status"] == "failed" and payment["step_up"]["tries"] == 5
    drain()
    events = merchant.get("/v1/events?limit=20")["data"]
    failed = [e for e in events if e["type"] == "payment.failed" and e["data"]["id"] == held["id"]]
    assert failed and failed[0]["data"]["step_up"]["status"] == "failed"


def test_an_expired_code_is_refused_and_the_payment_stays_held(merchant, providers, monkeypatch):
    held, _ = _held(merchant, providers)
    phone = f"+86137{uuid.uuid4().int % 10**8:08d}"
    merchant.call("POST", f"/v1/payments/{held['id']}/step_up", {"method": "sms", "phone": phone})
    code = providers.codes_for(phone)[-1]
    from chalicelib.stepup import flow

    later = time.time() + flow.CODE_TTL_S + 1
    monkeypatch.setattr(flow.time, "time", lambda: later)
    answer = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {"code": code})
    assert answer.status_code == 422 and "expired" in answer.json()["error"]["message"]
    assert merchant.get(f"/v1/payments/{held['id']}")["status"] == "requires_step_up"


def test_codes_are_rate_limited_per_phone(merchant, providers):
    phone = f"+86136{uuid.uuid4().int % 10**8:08d}"
    statuses = []
    for _ in range(6):
        held, _ = _held(merchant, providers)
        statuses.append(merchant.call("POST", f"/v1/payments/{held['id']}/step_up",
                                      {"method": "sms", "phone": phone}).status_code)
    assert statuses == [200] * 5 + [429]
    assert len(providers.codes_for(phone)) == 5


def test_provider_down_fails_open_or_closed_as_each_rule_says(merchant, providers):
    providers.down = True
    try:
        rules({"rules": [rule("sift", "provider.score > 80", "deny", on_error="open")]}, providers)
        assert merchant.create_payment(payer=user())["status"] == "pending"
        rules({"rules": [rule("sift", "provider.score > 80", "deny", on_error="closed")]}, providers)
        answer = merchant.call("POST", "/v1/payments", {"merchant_order_no": uuid.uuid4().hex[:12], "amount": 5,
                                                        "currency": "CNY", "description": "x",
                                                        "method": "wechat.native", "payer": user()})
        assert answer.status_code == 402
    finally:
        providers.down = False


def test_slow_provider_is_cut_at_its_budget_and_a_score_is_used_when_given(merchant, providers):
    payer = user()
    providers.scores[payer["user_id"]] = 0.95
    rules({"rules": [rule("sift", "provider.score > 80", "challenge", step_up=["sms"], on_error="open")]}, providers)
    assert merchant.create_payment(payer=payer)["status"] == "requires_step_up"
    providers.delay_s = 1.0
    try:
        started = time.monotonic()
        assert merchant.create_payment(payer=payer)["status"] == "pending"  # no score in 300 ms: open
        assert time.monotonic() - started < 0.9
    finally:
        providers.delay_s = 0.0


def test_face_step_up_by_query(merchant, providers):
    held, _ = _held(merchant, providers, methods=("face", "sms"))
    started = merchant.call("POST", f"/v1/payments/{held['id']}/step_up", {"method": "face"})
    assert started.status_code == 200, started.text
    token = started.json()["action"]["url"].rsplit("/", 1)[1]
    waiting = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {})
    assert waiting.status_code == 409  # the payer has not finished at the provider's page
    assert waiting.json()["error"]["code"] == "step_up_pending"  # a code to act on, not words to match
    providers.face_results[token] = {"err": 0, "live": 0, "sim": 40}
    assert merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {}).status_code == 422
    providers.face_results[token] = {"err": 0, "live": 0, "sim": 92}
    passed = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {})
    assert passed.status_code == 200, passed.text
    assert passed.json()["step_up"]["similarity"] == 92 and passed.json()["status"] == "pending"


def test_webauthn_step_up_binds_payment_and_refuses_replay(merchant, providers, stack):
    held, payer = _held(merchant, providers, methods=("webauthn", "sms"))
    authenticator = SoftAuthenticator(origin=stack.api_url)
    options = merchant.call("POST", f"/v1/payers/{payer['user_id']}/authenticators/options")
    assert options.status_code == 200, options.text
    registered = merchant.call("POST", f"/v1/payers/{payer['user_id']}/authenticators",
                               {"credential": authenticator.register(options.json()["public_key"])})
    assert registered.status_code == 201, registered.text
    started = merchant.call("POST", f"/v1/payments/{held['id']}/step_up", {"method": "webauthn"}).json()
    public_key = started["action"]["public_key"]
    assert public_key["userVerification"] == "required"
    # an assertion over another payment's challenge (or with no user verification) is refused
    other, _ = _held(merchant, providers, methods=("webauthn",))
    forged = authenticator.assert_(public_key, challenge_override=b"\x00" * 32)
    assert merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify",
                         {"credential": forged}).status_code == 422
    no_uv = authenticator.assert_(public_key, user_verified=False)
    assert merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify",
                         {"credential": no_uv}).status_code == 422
    good = authenticator.assert_(public_key)
    passed = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {"credential": good})
    assert passed.status_code == 200, passed.text
    assert passed.json()["status"] == "pending" and passed.json()["step_up"]["method"] == "webauthn"
    assert passed.json()["step_up"]["user_verified"] is True
    # the same assertion on another payment, waiting for its own challenge, is a mismatch
    merchant.call("POST", f"/v1/payments/{other['id']}/step_up", {"method": "webauthn"})
    assert merchant.call("POST", f"/v1/payments/{other['id']}/step_up/verify",
                         {"credential": good}).status_code == 422


def test_refund_denied_by_ratio(merchant, providers, stack, drain):
    rules({"rules": [rule("ratio", "refund.ratio > 0.5", "deny", operations=["refund"])]}, providers)
    from tests.e2e.test_payment_life import pay
    from tests.helpers import wait_for

    payment = merchant.create_payment(amount=1000, payer=user())
    pay(stack, payment["attempt_id"])
    wait_for(lambda: merchant.get(f"/v1/payments/{payment['id']}")["status"] == "succeeded")
    small = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 400, "merchant_refund_no": "r1"})
    assert small.status_code == 201, small.text
    from chalicelib.storage import state_repo

    assert state_repo.get_refund(small.json()["id"]).risk["action"] == "allow"
    big = merchant.call("POST", f"/v1/payments/{payment['id']}/refunds", {"amount": 200, "merchant_refund_no": "r2"})
    assert big.status_code == 402 and big.json()["error"]["code"] == "risk_denied"
    assert merchant.get(f"/v1/payments/{payment['id']}")["amount_refund_pending"] + \
        merchant.get(f"/v1/payments/{payment['id']}")["amount_refunded"] == 400  # nothing reserved for the denied one


def test_a_held_payment_nobody_steps_up_for_closes_when_it_expires(merchant, providers, drain):
    held, _ = _held(merchant, providers)
    from chalicelib.domain.clock import iso, utcnow
    from chalicelib.service import status_sync
    from chalicelib.storage import records, state_repo
    from chalicelib.storage.aws import client
    from chalicelib.storage.codec import to_item

    attempt = state_repo.get_item(records.attempt_key(held["attempt_id"]))
    assert attempt["sync_due_at"] > iso(utcnow())  # not queried before it expires: there is nothing to ask about
    client("dynamodb").update_item(TableName=state_repo.state_table(), Key=to_item(records.attempt_key(held["attempt_id"])),
                                   UpdateExpression="SET expires_at = :past",
                                   ExpressionAttributeValues={":past": {"S": "2020-01-01T00:00:00Z"}})
    status_sync.sync_attempt(held["attempt_id"])
    closed = merchant.get(f"/v1/payments/{held['id']}")
    assert closed["status"] == "closed"
    drain()
    assert any(e["type"] == "payment.closed" and e["data"]["id"] == held["id"]
               for e in merchant.get("/v1/events?limit=20")["data"])


def test_operators_put_and_read_rules_and_decisions_by_api_and_cli(merchant, providers, stack, capsys, tmp_path):
    import json

    import requests

    from chalicelib.service.operators import create_operator_key
    from payhub_cli.main import main as payhub

    headers = {"Authorization": f"Bearer {create_operator_key('risk tests').api_key}",
               "Content-Type": "application/json"}
    bad = requests.post(f"{stack.api_url}/v1/operator/risk/rules", headers=headers, timeout=10,
                        data=json.dumps({"rules": [{"id": "x", "expr": "amount >", "action": "deny"}]}))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rules[0].expr"
    put = requests.post(f"{stack.api_url}/v1/operator/risk/rules", headers=headers, timeout=10,
                        data=json.dumps({"rules": [rule("big", "amount >= 9999", "review", reason="large amount")]}))
    assert put.status_code == 201, put.text
    version = put.json()["version"]
    shown = requests.get(f"{stack.api_url}/v1/operator/risk/rules", headers=headers, timeout=10).json()
    assert shown["version"] == version and shown["document"]["rules"][0]["id"] == "big"
    payment = merchant.create_payment(amount=9999, payer=user())
    risk = requests.get(f"{stack.api_url}/v1/operator/payments/{payment['id']}/risk", headers=headers, timeout=10)
    assert risk.status_code == 200, risk.text
    create = risk.json()["risk"]["create"]
    assert (create["action"], create["reasons"], create["rules_version"]) == ("review", ["large amount"], version)
    assert "risk" not in payment  # merchants see the step-up, never the rules that fired
    audit = requests.get(f"{stack.api_url}/v1/operator/audit?action=risk.rules.put&limit=1", headers=headers,
                         timeout=10).json()["data"][0]
    assert audit["after"] == {"version": version}
    source = tmp_path / "rules.json"
    source.write_text(json.dumps({"rules": [rule("cli", "amount == 1", "deny")]}))
    assert payhub(["risk", "put-rules", str(source)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == version + 1
    assert payhub(["risk", "decisions", payment["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["risk"]["create"]["action"] == "review"


def test_a_decision_adds_one_dynamodb_round_trip_to_a_create(merchant, providers):
    """Counters read in one BatchGetItem; their increments ride in the create's first transaction."""
    import threading

    from chalicelib.storage.aws import client
    from chalicelib.storage.transaction import Transaction

    rules({"rules": [rule("v", "velocity.payer.count_1h > 50 || velocity.device.count_10m > 50 || "
                              "velocity.ip.count_24h > 500 || city.unusual", "review")]}, providers)
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        if threading.current_thread().name != "MainThread":  # the API server's request thread, not the test
            calls.append(event_name.split(".")[-1])

    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    labels: list[str] = []
    real = Transaction.commit

    def commit(self: Transaction) -> None:
        labels.append("+".join(self._labels))
        real(self)

    try:
        Transaction.commit = commit  # type: ignore[method-assign]
        payer = user()
        merchant.create_payment(payer=payer)  # warm: rules and merchant cached as a warm function has them
        calls.clear()
        labels.clear()
        merchant.create_payment(payer=payer)
    finally:
        Transaction.commit = real  # type: ignore[method-assign]
        dynamodb.meta.events.unregister("before-call.dynamodb.*", count)
    assert calls.count("BatchGetItem") == 1
    assert calls.count("TransactWriteItems") == 2  # as before risk control: the intent, then the channel's answer
    first = labels[0].split("+")
    assert {"risk_payer", "risk_device", "risk_ip", "risk_profile"} <= set(first) and "order_no" in first
    assert len(labels) == 2


def test_rules_go_live_within_the_config_cache_time(providers, monkeypatch):
    """Another process puts a version; this warm one keeps its cached rules until the cache time has passed."""
    from chalicelib.config.cache import TtlCache
    from chalicelib.risk import store

    now = [1000.0]
    monkeypatch.setattr(store, "_cache", TtlCache(ttl_s=60, clock=lambda: now[0]))
    first = rules({"rules": [rule("a", "amount == 1", "deny")]}, providers)
    assert store.active().version == first
    monkeypatch.setattr(store._cache, "invalidate", lambda key=None: None)  # the put happens elsewhere
    second = rules({"rules": [rule("b", "amount == 2", "deny")]}, providers)
    now[0] += 59
    assert store.active().version == first
    now[0] += 2
    assert store.active().version == second
    assert [c.rule.rule_id for c in store.active().rules] == ["b"]


def test_forged_provider_requests_are_refused_by_the_sandbox(providers):
    from chalicelib.stepup import face, sms

    with pytest.raises(sms.SmsNotSent):
        sms.send_code(f"{providers.url}/sms", providers.aliyun_id, "not-the-secret", phone="+8613800000000",
                      sign_name="PayHub", template_code="SMS_1", code="123456")
    from chalicelib.domain.errors import ChannelError

    with pytest.raises(ChannelError):
        face.start(f"{providers.url}/faceid", providers.tencent_id, "not-the-key", rule_id="1", redirect_url="x")
    assert {"sms", "face"} <= set(providers.refused)
    from chalicelib.risk.provider import ScoreRequest, score

    assert score(providers.url, "wrong-key", ScoreRequest("$transaction", "u", "o", 1, "CNY"), budget_ms=300) is None


def test_the_local_stacks_starter_rules_only_watch(merchant, providers):
    from chalicelib.risk import store
    from chalicelib.storage import state_repo
    from infra.local.provision import risk as risk_provision

    version = risk_provision.provision(providers)
    assert store.active().version == version
    assert {c.rule.mode for c in store.active().rules} == {"shadow"}
    payer = user()
    for _ in range(5):
        merchant.create_payment(payer=payer)
    payment = merchant.create_payment(payer=payer)
    assert payment["status"] == "pending"
    create = state_repo.get_payment(payment["id"]).risk["create"]
    assert create["action"] == "allow" and create["shadow_action"] == "challenge"
    assert "payer-burst" in [r["rule"] for r in create["shadow"]]
    assert create["provider"]["available"] is True  # the sandbox scored it within the budget


def test_codes_are_rate_limited_per_payer_across_numbers(merchant, providers):
    rules({"rules": [rule("always", "amount >= 4242", "challenge", step_up=["sms"])]}, providers)
    payer = user()
    statuses = []
    for _ in range(6):
        held = merchant.create_payment(amount=4242, payer=payer)
        phone = f"+86134{uuid.uuid4().int % 10**8:08d}"  # a new number each time: the payer's limit still holds
        statuses.append(merchant.call("POST", f"/v1/payments/{held['id']}/step_up",
                                      {"method": "sms", "phone": phone}).status_code)
    assert statuses == [200] * 5 + [429]


def test_a_face_check_not_finished_in_time_expires(merchant, providers, monkeypatch):
    held, _ = _held(merchant, providers, methods=("face",))
    started = merchant.call("POST", f"/v1/payments/{held['id']}/step_up", {"method": "face"}).json()
    token = started["action"]["url"].rsplit("/", 1)[1]
    providers.face_results[token] = {"err": 0, "live": 0, "sim": 95}  # finished, but after the deadline
    from chalicelib.stepup import flow

    later = time.time() + 301
    monkeypatch.setattr(flow.time, "time", lambda: later)
    answer = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {})
    assert answer.status_code == 422 and "expired" in answer.json()["error"]["message"]
    assert merchant.get(f"/v1/payments/{held['id']}")["status"] == "requires_step_up"


def test_malformed_webauthn_answers_are_refused_not_crashes(merchant, providers, stack):
    """Found by the fuzzer: a credential missing its id reached the library's parser unguarded (500)."""
    held, payer = _held(merchant, providers, methods=("webauthn",))
    authenticator = SoftAuthenticator(origin=stack.api_url)
    options = merchant.call("POST", f"/v1/payers/{payer['user_id']}/authenticators/options").json()
    for junk in ({}, {"id": "x"}, {"id": "x", "rawId": "!!", "response": {"clientDataJSON": 5}}):
        refused = merchant.call("POST", f"/v1/payers/{payer['user_id']}/authenticators", {"credential": junk})
        assert refused.status_code == 422, refused.text
    assert merchant.call("POST", f"/v1/payers/{payer['user_id']}/authenticators",
                         {"credential": authenticator.register(options["public_key"])}).status_code == 201
    merchant.call("POST", f"/v1/payments/{held['id']}/step_up", {"method": "webauthn"})
    for junk in ({}, {"id": authenticator.assert_({"challenge": "AA", "rpId": "x"})["id"]}):
        answer = merchant.call("POST", f"/v1/payments/{held['id']}/step_up/verify", {"credential": junk})
        assert answer.status_code == 422, answer.text
