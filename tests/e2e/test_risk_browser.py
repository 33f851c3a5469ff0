"""A payer confirms a challenged payment with the platform authenticator, in headless Chromium with a virtual
authenticator (the DevTools WebAuthn domain), on a minimal page of our own that hosts the step-up script
(``chalicelib/stepup/assets/webauthn_step_up.js``) the hosted checkout page can include. The page reaches the hub
through a small "merchant backend" that adds the merchant's key, as a hosted page would through its session.

The time from the confirm tap to the page showing success is measured in the page over repeated runs."""

from __future__ import annotations

import json
import os
import statistics
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.e2e.test_risk import providers, rule, rules, user  # noqa: F401 - fixture

SCRIPT = Path(__file__).resolve().parents[2] / "chalicelib" / "stepup" / "assets" / "webauthn_step_up.js"
RUNS = int(os.environ.get("PAYHUB_BROWSER_RUNS", "12"))  # bench/risk_browser.py runs it longer
SHOTS = Path(os.environ.get("PAYHUB_SCREENSHOTS", "/tmp/payhub-risk-screenshots"))

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Confirm payment</title>
<style>body{font-family:sans-serif;max-width:26rem;margin:3rem auto}button{font-size:1.2rem;padding:.6rem 1.2rem}
#result{margin-top:1rem;font-weight:bold}</style></head><body>
<h1>Confirm your payment</h1><p id="what">PAYMENT</p>
<button id="register">Use this device's fingerprint / face</button>
<button id="confirm">Confirm with fingerprint</button><div id="result"></div>
<script src="/webauthn_step_up.js"></script><script>
const post = (path, body) => fetch("/api" + path, {method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify(body)}).then(async (r) => {
    const j = await r.json(); if (!r.ok) throw new Error(j.error.code); return j; });
const result = document.getElementById("result");
document.getElementById("register").onclick = async () => {
  try { await PayhubWebAuthn.register(post, "USER"); result.textContent = "Device registered"; }
  catch (e) { result.textContent = "Registration failed: " + e.message; }
};
document.getElementById("confirm").onclick = async () => {
  const tapped = performance.now();
  try {
    const payment = await PayhubWebAuthn.confirm(post, "PAYMENT");
    result.textContent = payment.step_up.status === "passed" ? "Payment confirmed" : "Not confirmed";
  } catch (e) { result.textContent = "Refused: " + e.message; }
  window.confirmMs = performance.now() - tapped;
};
</script></body></html>"""


class MerchantBackend:
    """Serves the page and relays its calls to the hub with the merchant's key (never given to the browser)."""

    def __init__(self, merchant: Any) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                if self.path == "/webauthn_step_up.js":
                    self._send(200, SCRIPT.read_bytes(), "text/javascript")
                elif self.path.startswith("/pay/"):
                    payment_id, user_id = self.path.split("/")[2:4]
                    html = PAGE.replace("PAYMENT", payment_id).replace("USER", user_id)
                    self._send(200, html.encode(), "text/html; charset=utf-8")
                else:
                    self._send(404, b"{}", "application/json")

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                route = self.path.removeprefix("/api")
                if route == "/authenticators/options":
                    answer = merchant.call("POST", f"/v1/payers/{body['user_id']}/authenticators/options")
                elif route == "/authenticators":
                    answer = merchant.call("POST", f"/v1/payers/{body['user_id']}/authenticators",
                                           {"credential": body["credential"]})
                elif route == "/step_up":
                    answer = merchant.call("POST", f"/v1/payments/{body['payment_id']}/step_up",
                                           {"method": body["method"]})
                else:
                    answer = merchant.call("POST", f"/v1/payments/{body['payment_id']}/step_up/verify",
                                           {"credential": body["credential"]})
                self._send(answer.status_code, answer.content, "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # WebAuthn wants a domain as RP id, and http is a secure context only on localhost
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_payer_confirms_with_the_platform_authenticator_in_chromium(merchant, providers, browser):  # noqa: F811
    backend = MerchantBackend(merchant)
    rules({"rules": [rule("big", "amount >= 8888", "challenge", step_up=["webauthn"])],
           "providers": {"webauthn_rp_id": "localhost", "webauthn_origins": [backend.origin]}}, providers)
    payer = user()
    SHOTS.mkdir(parents=True, exist_ok=True)
    timings: list[float] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        devtools = page.context.new_cdp_session(page)
        devtools.send("WebAuthn.enable")
        added = devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})
        first = merchant.create_payment(amount=8888, payer=payer)
        page.goto(f"{backend.origin}/pay/{first['id']}/{payer['user_id']}")
        page.click("#register")
        page.wait_for_function("document.getElementById('result').textContent.length > 0")
        assert page.inner_text("#result") == "Device registered"
        for run in range(RUNS):
            held = first if run == 0 else merchant.create_payment(amount=8888, payer=payer)
            assert held["status"] == "requires_step_up"
            if run:
                page.goto(f"{backend.origin}/pay/{held['id']}/{payer['user_id']}")
            page.click("#confirm")
            page.wait_for_function("window.confirmMs !== undefined")
            assert page.inner_text("#result") == "Payment confirmed", page.inner_text("#result")
            timings.append(float(page.evaluate("window.confirmMs")))
            if run == 0:
                page.screenshot(path=str(SHOTS / "confirmed.png"))
            payment = merchant.get(f"/v1/payments/{held['id']}")
            assert payment["status"] == "pending" and payment["action"]["type"] == "qr_code"
            assert payment["step_up"]["method"] == "webauthn" and payment["step_up"]["user_verified"] is True
        # A finger the authenticator does not recognise: with user verification required the browser gives no
        # assertion, so the payment stays held (the hub's own UV check: test_webauthn_step_up_binds_payment...)
        devtools.send("WebAuthn.setUserVerified", {"authenticatorId": added["authenticatorId"],
                                                   "isUserVerified": False})
        refused = merchant.create_payment(amount=8888, payer=payer)
        page.goto(f"{backend.origin}/pay/{refused['id']}/{payer['user_id']}")
        page.click("#confirm")
        page.wait_for_function("window.confirmMs !== undefined")
        page.screenshot(path=str(SHOTS / "refused.png"))
        assert page.inner_text("#result").startswith("Refused")
        assert merchant.get(f"/v1/payments/{refused['id']}")["status"] == "requires_step_up"
    finally:
        context.close()
        backend.server.shutdown()
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"\nconfirm tap -> success shown over {len(timings)} runs: median {statistics.median(timings):.0f} ms, "
          f"p99 {p99:.0f} ms, max {ordered[-1]:.0f} ms (measured by bench/risk_browser.py; goal p99 < 1000 ms)")
