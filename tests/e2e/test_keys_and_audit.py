"""Keys that can be taken back: merchant API keys created, rotated with overlap and revoked through the
operator API and the CLI; revocation and suspension effective on a warm function within 5 s (measured with
the deployed cache settings); webhook secrets rotated with both signatures during the overlap; every operator
action audited and readable through both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.config.settings import load_settings, settings
from chalicelib.domain.clock import parse_iso
from chalicelib.service import api_keys, audit
from payhub_cli.main import main as payhub
from tests.helpers import MerchantClient, make_merchant, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROMISE_S = 5.0  # revocation and suspension reach every warm function within this


@pytest.fixture(scope="module")
def operator_headers(stack) -> dict[str, str]:
    from chalicelib.service.operators import create_operator_key

    created = create_operator_key("keys tests")
    return {"Authorization": f"Bearer {created.api_key}", "Content-Type": "application/json"}


def op(stack, headers: dict[str, str], method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.request(method, f"{stack.api_url}{path}", headers=headers,
                            data=json.dumps(body).encode() if body is not None else None, timeout=30)


def as_key(merchant: MerchantClient, api_key: str) -> MerchantClient:
    return MerchantClient(merchant.api_url, merchant.merchant_id, api_key, merchant.webhook_secret)


def authenticated(client: MerchantClient) -> bool:
    """True while the key is accepted (an unknown order is 404 for an authenticated merchant), False on 401."""
    status = client.call("GET", "/v1/payments?merchant_order_no=none").status_code
    assert status in (401, 404), status
    return status == 404


def run_cli(capsys, *args: str) -> tuple[int, Any, str]:
    code = payhub(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def cli_in_another_process(*args: str) -> None:
    """Run ``payhub`` as another process: its own caches, like another Lambda committing a change."""
    subprocess.run([sys.executable, "-m", "payhub_cli.main", *args], cwd=ROOT, env={**os.environ},
                   check=True, capture_output=True, timeout=60)


def test_api_keys_through_the_operator_api(stack, merchant, operator_headers):
    base = f"/v1/operator/merchants/{merchant.merchant_id}/api-keys"
    created = op(stack, operator_headers, "POST", base, {"name": "second"})
    assert created.status_code == 201, created.text
    second = as_key(merchant, created.json()["api_key"])
    assert authenticated(second) and authenticated(merchant)

    listed = op(stack, operator_headers, "GET", base)
    assert listed.status_code == 200
    keys = {k["id"]: k for k in listed.json()["data"]}
    assert len(keys) == 2 and {k["status"] for k in keys.values()} == {"active"}
    assert merchant.api_key not in listed.text and second.api_key not in listed.text
    assert api_keys.api_key_hash(merchant.api_key) not in listed.text  # not even the hash

    revoked = op(stack, operator_headers, "POST", f"{base}/{created.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    wait_for(lambda: not authenticated(second), timeout_s=PROMISE_S)
    assert authenticated(merchant)  # the merchant's other key is untouched

    trail = op(stack, operator_headers, "GET", f"/v1/operator/audit?target={merchant.merchant_id}&action=api_key.")
    actions = [(r["action"], r["actor"]["via"]) for r in trail.json()["data"]]
    assert actions == [("api_key.revoke", "api"), ("api_key.create", "api")]
    assert trail.json()["data"][0]["before"]["status"] == "active"
    assert trail.json()["data"][0]["after"]["status"] == "revoked"
    assert second.api_key not in trail.text


def test_rotation_keeps_the_old_key_for_the_overlap_then_ends_it(stack, merchant, operator_headers):
    base = f"/v1/operator/merchants/{merchant.merchant_id}/api-keys"
    [initial] = op(stack, operator_headers, "GET", base).json()["data"]
    rotated = op(stack, operator_headers, "POST", f"{base}/{initial['id']}/rotate", {"overlap_seconds": 2})
    assert rotated.status_code == 201, rotated.text
    new = as_key(merchant, rotated.json()["api_key"])
    assert rotated.json()["rotated"]["id"] == initial["id"] and rotated.json()["rotated"]["expires_at"]
    assert authenticated(new) and authenticated(merchant)  # both during the overlap
    wait_for(lambda: not authenticated(merchant), timeout_s=2 + 1)  # expiry is checked on every request
    assert authenticated(new)
    statuses = {k["id"]: k["status"] for k in op(stack, operator_headers, "GET", base).json()["data"]}
    assert statuses == {initial["id"]: "expired", rotated.json()["id"]: "active"}
    again = op(stack, operator_headers, "POST", f"{base}/{initial['id']}/rotate", {"overlap_seconds": 60})
    assert again.status_code == 409  # an expired key cannot be rotated (it would come back to life)


@pytest.mark.parametrize(("body", "param"), [({"overlap_seconds": -1}, "overlap_seconds"),
                                              ({"overlap_seconds": "60"}, "overlap_seconds"),
                                              ({}, "overlap_seconds"), ({"overlap_seconds": 1, "x": 1}, "x")])
def test_bad_operator_input_names_the_field(stack, merchant, operator_headers, body, param):
    base = f"/v1/operator/merchants/{merchant.merchant_id}/api-keys"
    [initial] = op(stack, operator_headers, "GET", base).json()["data"]
    response = op(stack, operator_headers, "POST", f"{base}/{initial['id']}/rotate", body)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_operator_routes_refuse_merchant_keys_and_unknown_merchants(stack, merchant, operator_headers):
    merchant_auth = {"Authorization": f"Bearer {merchant.api_key}"}
    assert op(stack, merchant_auth, "GET", f"/v1/operator/merchants/{merchant.merchant_id}/api-keys").status_code == 401
    assert op(stack, merchant_auth, "GET", "/v1/operator/audit").status_code == 401
    missing = op(stack, operator_headers, "POST", "/v1/operator/merchants/mch_nobody/suspend")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "merchant_id"


def test_the_cli_creates_rotates_revokes_and_reads_the_audit(stack, merchant, capsys, monkeypatch):
    monkeypatch.setenv("PAYHUB_OPERATOR", "alice")
    code, created, _ = run_cli(capsys, "api-key", "create", "--merchant", merchant.merchant_id, "--name", "pos")
    assert code == 0 and created["api_key"].startswith("sk_local_")
    code, rotated, _ = run_cli(capsys, "api-key", "rotate", created["id"], "--merchant", merchant.merchant_id,
                               "--overlap", "24h")
    assert code == 0 and rotated["rotated"]["expires_at"] > rotated["created_at"]
    assert authenticated(as_key(merchant, created["api_key"])) and authenticated(as_key(merchant, rotated["api_key"]))
    code, revoked, _ = run_cli(capsys, "api-key", "revoke", rotated["id"], "--merchant", merchant.merchant_id)
    assert code == 0 and revoked["status"] == "revoked"
    code, listed, _ = run_cli(capsys, "api-key", "list", "--merchant", merchant.merchant_id)
    assert {k["id"]: k["status"] for k in listed}[rotated["id"]] == "revoked"
    code, trail, _ = run_cli(capsys, "audit", "list", "--target", merchant.merchant_id)
    assert [r["action"] for r in trail["data"]] == ["api_key.revoke", "api_key.rotate", "api_key.create",
                                                    "merchant.create"]
    assert {r["actor"]["id"] for r in trail["data"][:3]} == {"alice"}
    assert created["api_key"] not in json.dumps(trail) and rotated["api_key"] not in json.dumps(trail)
    with pytest.raises(SystemExit) as refused:  # argparse refuses the duration before anything is done
        payhub(["api-key", "rotate", created["id"], "--merchant", merchant.merchant_id, "--overlap", "soon"])
    assert refused.value.code == 2 and "expected a duration" in capsys.readouterr().err


def test_suspension_and_reactivation_through_the_cli_and_api(stack, merchant, operator_headers, capsys):
    code, suspended, _ = run_cli(capsys, "merchant", "suspend", merchant.merchant_id)
    assert code == 0 and suspended["status"] == "suspended"
    wait_for(lambda: not authenticated(merchant), timeout_s=PROMISE_S)
    back = op(stack, operator_headers, "POST", f"/v1/operator/merchants/{merchant.merchant_id}/reactivate")
    assert back.status_code == 200 and back.json()["status"] == "active"
    wait_for(lambda: authenticated(merchant), timeout_s=PROMISE_S)
    trail = op(stack, operator_headers, "GET", f"/v1/operator/audit?target={merchant.merchant_id}&action=merchant.")
    assert [(r["action"], r["actor"]["via"], r["after"]) for r in trail.json()["data"][:2]] == [
        ("merchant.reactivate", "api", {"status": "active"}), ("merchant.suspend", "cli", {"status": "suspended"})]


def _measure(merchant: MerchantClient, change: tuple[str, ...]) -> float:
    """Seconds from the commit of ``change`` (by another process) to the first refusal by the API, whose cache
    is kept warm by a request every 20 ms from before the change. The commit time is the audit record's
    ``at``, taken just before the transaction that makes the change, so the figure errs on the long side."""
    refused_at: list[float] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            if not authenticated(merchant):
                refused_at.append(time.time())
                return
            time.sleep(0.02)

    assert authenticated(merchant)
    worker = threading.Thread(target=hammer)
    worker.start()
    time.sleep(0.5)
    cli_in_another_process(*change)
    worker.join(timeout=PROMISE_S + 5)
    stop.set()
    assert refused_at, "never refused"
    [latest], _ = audit.list_records(limit=1, target=merchant.merchant_id)
    assert latest["action"] in ("api_key.revoke", "merchant.suspend")
    return refused_at[0] - parse_iso(latest["at"]).timestamp()


def test_revocation_and_suspension_reach_a_warm_function_within_5_s(stack, capsys):
    # The API under test runs with the deployed cache settings: nothing in the test environment overrides them.
    deployed = load_settings({"PAYHUB_STAGE": "prod", "PAYHUB_PUBLIC_BASE_URL": "https://pay.example.com"})
    assert "PAYHUB_AUTH_CACHE_TTL_S" not in os.environ
    assert settings().auth_cache_ttl_s == deployed.auth_cache_ttl_s
    assert api_keys._auth_cache._ttl_s == deployed.auth_cache_ttl_s

    revoked = make_merchant(stack)
    [key] = api_keys.list_keys(revoked.merchant_id)
    revocation = _measure(revoked, ("api-key", "revoke", key["id"], "--merchant", revoked.merchant_id))
    suspended = make_merchant(stack)
    suspension = _measure(suspended, ("merchant", "suspend", suspended.merchant_id))
    print(f"\nwarm-function refusal after commit (TTL {deployed.auth_cache_ttl_s} s): "
          f"revocation {revocation:.2f} s, suspension {suspension:.2f} s")
    assert revocation < PROMISE_S and suspension < PROMISE_S
    assert revocation <= deployed.auth_cache_ttl_s + 1.0 and suspension <= deployed.auth_cache_ttl_s + 1.0


def test_the_auth_cache_setting_cannot_exceed_the_promise():
    for bad in ("5", "60", "-1"):
        with pytest.raises(ValueError, match="PAYHUB_AUTH_CACHE_TTL_S"):
            load_settings({"PAYHUB_STAGE": "prod", "PAYHUB_PUBLIC_BASE_URL": "https://pay.example.com",
                           "PAYHUB_AUTH_CACHE_TTL_S": bad})


def _deliveries_to(stack, merchant: MerchantClient) -> list[dict[str, Any]]:
    path = merchant.webhook_url.removeprefix(stack.receiver.base_url)
    return [r for r in stack.receiver.raw if r["path"] == path]


def _close_and_deliver(merchant: MerchantClient, drain) -> None:
    payment = merchant.create_payment()
    assert merchant.call("POST", f"/v1/payments/{payment['id']}/close").status_code == 200
    drain()


def test_webhook_secret_rotation_signs_with_both_during_the_overlap(stack, merchant, operator_headers, drain):
    old = merchant.webhook_secret
    rotated = op(stack, operator_headers, "POST",
                 f"/v1/operator/merchants/{merchant.merchant_id}/webhook-secret/rotate", {"overlap_seconds": 3600})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["webhook_secret"]
    assert new.startswith("whsec_") and new != old
    _close_and_deliver(merchant, drain)
    delivery = wait_for(lambda: _deliveries_to(stack, merchant))[-1]
    signatures = delivery["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    body = delivery["body"].decode()
    assert Webhook(old).verify(body, delivery["headers"])["type"] == "payment.closed"
    assert Webhook(new).verify(body, delivery["headers"])["type"] == "payment.closed"

    # Without overlap the new secret replaces every older one at once (a leaked secret).
    newest = op(stack, operator_headers, "POST", f"/v1/operator/merchants/{merchant.merchant_id}/webhook-secret/rotate",
                {"overlap_seconds": 0}).json()["webhook_secret"]
    stack.receiver.trust(merchant.webhook_url, newest)
    seen = len(_deliveries_to(stack, merchant))
    _close_and_deliver(merchant, drain)
    delivery = wait_for(lambda: _deliveries_to(stack, merchant)[seen:])[-1]
    assert len(delivery["headers"]["webhook-signature"].split(" ")) == 1
    Webhook(newest).verify(delivery["body"].decode(), delivery["headers"])
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            Webhook(stale).verify(delivery["body"].decode(), delivery["headers"])
    trail = op(stack, operator_headers, "GET", f"/v1/operator/audit?target={merchant.merchant_id}"
                                               "&action=webhook_secret.").json()["data"]
    assert [r["after"]["overlap_seconds"] for r in trail] == [0, 3600]
    assert all(secret not in json.dumps(trail) for secret in (old, new, newest))


def test_channel_account_put_is_audited_without_its_secrets(stack, capsys, tmp_path, operator_headers):
    document = {"account": {"account_id": "wechat-audited", "channel": "wechatpay", "enabled": False,
                            "methods": ["wechat.native"], "api_base_url": stack.sandbox_url,
                            "settings": {"mchid": "1900000998", "appid": "wx0000000000000002",
                                         "merchant_serial_no": "ABC"}},
                "secrets": {"apiv3_key": "s" * 32, "merchant_private_key": "very-private", "platform_keys": {}}}
    path = tmp_path / "account.json"
    for priority in (90, 91):  # stays disabled: its placeholder key must never take another test's payment
        document["account"]["priority"] = priority
        path.write_text(json.dumps(document))
        assert run_cli(capsys, "channel", "put", str(path))[0] == 0
    trail = op(stack, operator_headers, "GET", "/v1/operator/audit?target=wechat-audited").json()["data"]
    assert [r["action"] for r in trail] == ["channel_account.put", "channel_account.put"]
    assert trail[0]["before"]["document"]["priority"] == 90 and trail[0]["after"]["document"]["priority"] == 91
    assert trail[1]["before"] is None
    assert trail[0]["after"]["secret_fields"] == ["apiv3_key", "merchant_private_key", "platform_keys"]
    assert "s" * 32 not in json.dumps(trail) and "very-private" not in json.dumps(trail)


def test_audit_pages_newest_first(stack, operator_headers, capsys):
    for name in ("a", "b", "c"):
        assert run_cli(capsys, "operator-key", "create", "--name", f"paging-{name}")[0] == 0
    first = op(stack, operator_headers, "GET", "/v1/operator/audit?action=operator_key.create&limit=2").json()
    assert len(first["data"]) == 2 and first["has_more"]
    second = op(stack, operator_headers, "GET", "/v1/operator/audit?action=operator_key.create&limit=2"
                                                f"&starting_after={first['next_starting_after']}").json()
    ids = [r["id"] for r in first["data"] + second["data"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert [r["after"]["name"] for r in first["data"]] == ["paging-c", "paging-b"]
    bad = op(stack, operator_headers, "GET", "/v1/operator/audit?limit=0")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
