"""The hosted checkout page: its weight, its first render in headless Chromium, and how soon it shows success
after the channel's callback reaches the hub.

Starts, in this process, what ``make run`` starts for one channel (moto, the WeChat Pay sandbox with a provisioned
account, the API on Chalice's local server) and drives Debian's ``/usr/bin/chromium`` through Playwright.

* **weight**: bytes of the page's HTML (the method list) plus its one CSS and one JS file, as served (no
  compression); QR images are inline SVG on the QR screen and counted separately. Budget: 100 KB.
* **first render**: a fresh browser context (empty cache) per run opens a new session's page; the figure is the
  page's own ``first-contentful-paint`` (Paint Timing API, from navigation start), and also navigation start to
  ``load``. Budget: 1 s.
* **callback -> success shown**: the page shows the WeChat QR code; the sandbox pays and sends its signed callback;
  the clock starts when the hub's callback handler receives it (a log record in this process, the same clock) and
  stops when the browser finds the "Payment successful" heading, redrawn by the page's own status polling.
  Budget: 2 s.

    python bench/checkout_page.py [--runs 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import fmt, table  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class CallbackClock:
    """Notes when the hub's callback route starts handling a channel's callback (it has reached the hub): wraps
    the handler the callback route calls, in this process, on the same monotonic clock as the browser side."""

    def __init__(self) -> None:
        self.arrived: float | None = None

    def install(self) -> None:
        import functions.callbacks as route

        handle = route.handle_callback

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.arrived is None:
                self.arrived = time.monotonic()
            return handle(*args, **kwargs)

        route.handle_callback = timed  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each browser measurement")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing (Debian package chromium)", file=sys.stderr)
        return 2

    os.environ["PAYHUB_STAGE"] = "local"
    os.environ["PAYHUB_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    for noisy in ("werkzeug", "botocore", "urllib3", "moto", "sandbox", "chalicelib", "payhub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from infra.local.moto import free_port

    api_port = free_port()
    os.environ["PAYHUB_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{api_port}"

    import requests

    from infra.local.api_server import create_api_server
    from infra.local.bootstrap import create_stage_resources
    from infra.local.demo import create_demo_merchant
    from infra.local.moto import start_moto
    from infra.local.provision.wechatpay import provision
    from sandbox.wechatpay.server import WeChatPaySandbox

    moto, _ = start_moto()
    create_stage_resources("local")
    sandbox = WeChatPaySandbox(retry_scale=0.05)
    sandbox_url = sandbox.start()
    provision(sandbox_url)
    demo = create_demo_merchant(None)
    server = create_api_server("127.0.0.1", api_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{api_port}"
    clock = CallbackClock()
    clock.install()

    def new_session() -> dict[str, Any]:
        answer = requests.post(f"{api}/v1/checkout_sessions", timeout=30, headers={
            "Authorization": f"Bearer {demo.api_key}", "Idempotency-Key": uuid.uuid4().hex}, json={
            "merchant_order_no": f"bench{uuid.uuid4().hex[:20]}", "amount": 2600, "currency": "CNY",
            "description": "Oolong tea", "allowed_methods": ["wechat.native"], "return_url": "https://shop.example/ok",
            "locale": "en"})
        answer.raise_for_status()
        return dict(answer.json())

    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            weight = page_weight(browser, new_session()["url"])
            fcp, load = first_render(browser, new_session, args.runs)
            shown = callback_to_success(browser, new_session, sandbox_url, args.runs, clock)
            browser.close()
    finally:
        server.server.shutdown()
        sandbox.stop()
        moto.stop()

    print(f"Hosted checkout page, {args.runs} runs per browser figure (headless Chromium, local stack)\n")
    print(table(["what", "bytes"], [[name, f"{size:,}"] for name, size in weight.items()]))
    print()
    rows = [["first-contentful-paint", fmt(percentile(fcp, .5)), fmt(percentile(fcp, .95)), fmt(max(fcp)), "1000"],
            ["navigation -> load", fmt(percentile(load, .5)), fmt(percentile(load, .95)), fmt(max(load)), ""],
            ["callback at hub -> success shown", fmt(percentile(shown, .5)), fmt(percentile(shown, .95)),
             fmt(max(shown)), "2000"]]
    print(table(["ms", "p50", "p95", "max", "budget"], rows))
    return 0


def page_weight(browser: Any, url: str) -> dict[str, int]:
    """Bytes as served (uncompressed): the method list, its CSS and JS; then the QR screen the browser drew."""
    import requests

    from chalicelib.checkout.page import ASSET_VERSION

    origin = url.split("/checkout/")[0]
    html = len(requests.get(url, timeout=30).content)
    css, js = (len(requests.get(f"{origin}/checkout-assets/checkout.{ext}?v={ASSET_VERSION}", timeout=30).content)
               for ext in ("css", "js"))
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="WeChat Pay").click()
    page.get_by_role("heading", name="Scan the QR code with WeChat to pay").wait_for()
    qr_html = len(page.content().encode())
    context.close()
    return {"HTML (method list)": html, "CSS": css, "JS": js, "total (budget 100,000)": html + css + js,
            "QR screen HTML, inline SVG included": qr_html}


def first_render(browser: Any, new_session: Any, runs: int) -> tuple[list[float], list[float]]:
    fcp, load = [], []
    for _ in range(runs + 1):
        url = new_session()["url"]
        context = browser.new_context(viewport={"width": 390, "height": 844})  # empty cache each run
        page = context.new_page()
        page.goto(url, wait_until="load")
        # The paint entry may be queued after ``load``: wait for it through an observer (buffered: also earlier).
        timing = page.evaluate("""() => new Promise(resolve => {
            const nav = () => performance.getEntriesByType('navigation')[0].loadEventEnd;
            new PerformanceObserver(list => {
                const paint = list.getEntriesByName('first-contentful-paint')[0];
                if (paint) { resolve({fcp: paint.startTime, load: nav()}); }
            }).observe({type: 'paint', buffered: true});
            setTimeout(() => resolve({fcp: null, load: nav()}), 5000);
        })""")
        context.close()
        if timing["fcp"] is None:
            raise RuntimeError("the browser reported no first-contentful-paint")
        fcp.append(float(timing["fcp"]))
        load.append(float(timing["load"]))
    return fcp[1:], load[1:]  # the first run warms the browser process itself


def callback_to_success(browser: Any, new_session: Any, sandbox_url: str, runs: int,
                        clock: CallbackClock) -> list[float]:
    import requests

    from chalicelib.storage import state_repo

    waits = []
    for _ in range(runs):
        session = new_session()
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(session["url"])
        page.get_by_role("button", name="WeChat Pay").click()
        page.get_by_role("heading", name="Scan the QR code with WeChat to pay").wait_for()
        payment = state_repo.get_payment(session["payment_id"])
        assert payment is not None and payment.current_attempt_id
        clock.arrived = None
        requests.post(f"{sandbox_url}/_sandbox/pay", json={"out_trade_no": payment.current_attempt_id}, timeout=10)
        page.wait_for_selector("h1:text('Payment successful')", timeout=10_000)
        shown = time.monotonic()
        if clock.arrived is None:
            raise RuntimeError("the callback's arrival was not seen")
        waits.append((shown - clock.arrived) * 1000)
        context.close()
    return waits


if __name__ == "__main__":
    sys.exit(main())
