"""Risk rules and WebAuthn verification, no I/O: 100 CEL rules over one payment's features (goal p99 <= 1 ms) and
one server-side WebAuthn assertion verification (goal p99 < 100 ms). Prints the figures.

Each sample is timed twice: by the thread's CPU clock (what the code costs, unaffected by other processes on a
shared machine) and by the wall clock (what a payment waits, including being descheduled). On a quiet machine
the two agree; the goals are judged on CPU time, and the wall figures are printed beside them."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.risk.compiled import CompiledDocument  # noqa: E402
from chalicelib.risk.counters import Snapshot, Subject  # noqa: E402
from chalicelib.risk.decide import Context, build_features  # noqa: E402
from chalicelib.risk.rules import parse_document  # noqa: E402


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rules_figures(runs: int = 2000) -> dict[str, float]:
    shapes = ["velocity.payer.count_1h > {i} && amount > {i}00", "city.unusual && amount >= {i}000",
              "device.new && payer.known && amount > {i}0000", "lists.blocked || limits.over",
              "velocity.ip.count_10m > {i} || velocity.card.amount_24h > {i}000000",
              "refund.ratio > 0.{i} && operation == 'refund'", "method == 'wechat.native' && amount > {i}99"]
    raw = {"rules": [{"id": f"r{i}", "expr": shapes[i % len(shapes)].format(i=i % 9 + 1),
                      "action": ["review", "challenge", "deny"][i % 3], "mode": "enforce",
                      **({"step_up": ["sms", "webauthn"]} if i % 3 == 1 else {})} for i in range(100)]}
    compiled = CompiledDocument(1, parse_document(raw))
    ctx = Context("create", "mch_1", "wechat.native", 5000, "CNY",
                  Subject("u1", "d1", "fp", "203.0.113.9", "Shanghai"), "pay_1")
    snapshot = Snapshot(cities={"Beijing": 5}, devices={})
    rules = compiled.applicable("create", "mch_1", "wechat.native")
    assert len(rules) == 100
    return _timed(lambda: compiled.evaluate(rules, build_features(ctx, compiled.document, snapshot)), runs)


def _timed(work, runs: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    cpu, wall = [], []
    for _ in range(runs):
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        work()
        cpu.append((time.thread_time() - cpu0) * 1000)
        wall.append((time.perf_counter() - wall0) * 1000)
    return {"cpu_p50": _p(cpu, 0.5), "cpu_p99": _p(cpu, 0.99), "wall_p50": _p(wall, 0.5), "wall_p99": _p(wall, 0.99)}


def webauthn_figures(runs: int = 300) -> dict[str, float]:
    from webauthn import verify_authentication_response

    from tests.risk_kit import SoftAuthenticator, b64u

    authenticator = SoftAuthenticator("https://pay.example.com")
    options = {"challenge": "", "rp": {"id": "pay.example.com"}}
    registration = authenticator.register({**options, "challenge": b64u(b"r" * 32)})
    from webauthn import verify_registration_response

    verified = verify_registration_response(credential=registration, expected_challenge=b"r" * 32,
                                            expected_rp_id="pay.example.com", expected_origin="https://pay.example.com",
                                            require_user_verification=True)
    cases = []
    for i in range(runs):
        challenge = hashlib.sha256(f"pay_{i}|100|CNY|mch".encode()).digest()
        cases.append((challenge, authenticator.assert_({"challenge": b64u(challenge), "rpId": "pay.example.com"}), i))
    pending = iter(cases)

    def verify_one() -> None:
        challenge, assertion, count = next(pending)
        verify_authentication_response(credential=assertion, expected_challenge=challenge,
                                       expected_rp_id="pay.example.com", expected_origin="https://pay.example.com",
                                       credential_public_key=verified.credential_public_key,
                                       credential_current_sign_count=count, require_user_verification=True)

    return _timed(verify_one, runs)


def main() -> None:
    with open("/proc/loadavg", encoding="utf-8") as load:
        print(f"load average {load.read().split()[0]}")
    r = rules_figures()
    print(f"risk rules (100 CEL rules + building the features), CPU p50 {r['cpu_p50']:.3f} ms, p99 {r['cpu_p99']:.3f} ms"
          f" (goal p99 <= 1 ms); wall p50 {r['wall_p50']:.3f} ms, p99 {r['wall_p99']:.3f} ms")
    w = webauthn_figures()
    print(f"webauthn assertion verification, CPU p50 {w['cpu_p50']:.2f} ms, p99 {w['cpu_p99']:.2f} ms (goal p99 < 100 ms);"
          f" wall p50 {w['wall_p50']:.2f} ms, p99 {w['wall_p99']:.2f} ms")


if __name__ == "__main__":
    main()
