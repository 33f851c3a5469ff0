"""Cost of verifying one channel callback, end to end for every channel, and per primitive for WeChat Pay.

Every channel's full path is its adapter's ``verify_and_parse_notification``, with cases from
``bench/verify/<channel>.py``. For WeChat Pay, the full path is: credentials from the account, the
Wechatpay-* headers (timestamp window, key by serial, signature over the exact bytes), the resource's AEAD
decryption and the parse into a ``Notification``. Keys are generated in-process (tests/unit/channels/
wechatpay_kit.py, the kit the adapter tests use); nothing touches the network or AWS.

Each benchmark is calibrated to ~``--target-s`` per run and repeated ``--repeat`` times; the figure is the
median run. ops/s is per core: the process is single-threaded.

    python bench/callback_verify.py [--repeat 7] [--target-s 0.2]
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, calibrate, fmt, median, table  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "channels"))
import wechatpay_kit as kit_module  # noqa: E402

from chalicelib.channels.base import InboundCallback, NotificationKind  # noqa: E402
from chalicelib.channels.transport import UrllibTransport  # noqa: E402
from chalicelib.channels.wechatpay import WeChatPayAdapter, verification  # noqa: E402
from chalicelib.channels.wechatpay.verification import verification_message  # noqa: E402
from chalicelib.crypto import rsa  # noqa: E402
from chalicelib.crypto.aead import aes_gcm_decrypt, sm4_gcm_decrypt, sm4_key_from_secret  # noqa: E402
from chalicelib.crypto.sm import sm2_verify  # noqa: E402


@dataclass
class Result:
    name: str
    us_per_op: float
    spread: tuple[float, float]  # fastest and slowest run, µs per op
    iterations: int


def bench(name: str, fn: Callable[[], object], *, repeat: int, target_s: float) -> Result:
    number = calibrate(fn, target_s)  # the warm-up fills first-call caches (key objects), which a warm Lambda does not pay
    per_op = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        per_op.append((time.perf_counter() - started) / number * 1e6)
    return Result(name, median(per_op), (min(per_op), max(per_op)), number)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--target-s", type=float, default=0.2)
    args = parser.parse_args(argv)
    begun = time.perf_counter()

    kit = kit_module.make_kit()
    adapter = WeChatPayAdapter(UrllibTransport(), clock=lambda: kit_module.NOW)
    payload = kit_module.transaction()
    rsa_account, sm2_account = kit.account("RSA"), kit.account("SM2")

    rsa_body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(payload))
    rsa_callback = kit.callback(rsa_body, kit.signed_headers(rsa_body, kit.platform_rsa))
    sm_body = kit.envelope("TRANSACTION.SUCCESS", kit.resource(payload, algorithm="AEAD_SM4_GCM"))
    sm_callback = kit.callback(sm_body, kit.signed_headers(sm_body, kit.platform_sm2))

    def full(account: object, callback: InboundCallback) -> Callable[[], object]:
        def run() -> object:
            notification = adapter.verify_and_parse_notification(account, callback)  # type: ignore[arg-type]
            assert notification.kind is NotificationKind.PAYMENT
            return notification
        return run

    def full_rsa_key_uncached() -> object:
        verification._rsa_public_key.cache_clear()  # what the first callback after a cold start pays
        return full(rsa_account, rsa_callback)()

    # the primitives, on the same bytes and signatures the full paths check
    rsa_message = verification_message(rsa_callback.headers["wechatpay-timestamp"],
                                       rsa_callback.headers["wechatpay-nonce"], rsa_body)
    sm2_message = verification_message(sm_callback.headers["wechatpay-timestamp"],
                                       sm_callback.headers["wechatpay-nonce"], sm_body)
    rsa_public = rsa.load_public_key(kit.platform_rsa.public_text)
    rsa_signature = base64.b64decode(rsa_callback.headers["wechatpay-signature"])
    sm2_signature = base64.b64decode(sm_callback.headers["wechatpay-signature"])
    aes_resource = json.loads(rsa_body)["resource"]
    sm4_resource = json.loads(sm_body)["resource"]
    apiv3 = kit_module.APIV3_KEY.encode()
    sm4_key = sm4_key_from_secret(apiv3)

    def sealed(resource: dict[str, str]) -> tuple[bytes, bytes, bytes]:
        return (resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                resource["associated_data"].encode())

    aes_nonce, aes_sealed, aes_aad = sealed(aes_resource)
    sm4_nonce, sm4_sealed, sm4_aad = sealed(sm4_resource)
    assert rsa.verify_sha256(rsa_public, rsa_message, rsa_signature)
    assert sm2_verify(kit.platform_sm2.public_text, sm2_message, sm2_signature)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("full path: RSA-2048 + AEAD_AES_256_GCM", full(rsa_account, rsa_callback)),
        ("full path: SM2 + AEAD_SM4_GCM", full(sm2_account, sm_callback)),
        ("full path: RSA-2048, PEM parsed every call", full_rsa_key_uncached),
        ("RSA-2048 PKCS#1 v1.5 SHA-256 verify", lambda: rsa.verify_sha256(rsa_public, rsa_message, rsa_signature)),
        ("SM2 (SM3) verify, hub path (Tongsuo)", lambda: sm2_verify(kit.platform_sm2.public_text, sm2_message, sm2_signature)),
        ("RSA public key PEM load", lambda: rsa.load_public_key(kit.platform_rsa.public_text)),
        (f"AES-256-GCM decrypt ({len(aes_sealed) - 16} B)", lambda: aes_gcm_decrypt(apiv3, aes_nonce, aes_sealed, aes_aad)),
        (f"SM4-GCM decrypt ({len(sm4_sealed) - 16} B)", lambda: sm4_gcm_decrypt(sm4_key, sm4_nonce, sm4_sealed, sm4_aad)),
        ("SM4 key derivation (SM3 of APIv3 key)", lambda: sm4_key_from_secret(apiv3)),
    ]
    cases = [(f"wechatpay {name}" if name.startswith("full") else name, fn) for name, fn in cases]
    for channel in ("alipay", "unionpay", "ecny", "stripe", "paypal"):
        module = importlib.import_module(f"verify.{channel}")
        cases += [(f"{channel} full path: {name}", fn) for name, fn in module.cases()]
    results = [bench(name, fn, repeat=args.repeat, target_s=args.target_s) for name, fn in cases]

    print(f"## Callback verification: median of {args.repeat} runs, one core\n")
    print(table(["operation", "µs/op", "ops/s", "fastest µs", "slowest µs", "iterations/run"], [
        [r.name, fmt(r.us_per_op), fmt(1e6 / r.us_per_op, 0), fmt(r.spread[0]), fmt(r.spread[1]), str(r.iterations)]
        for r in results]))
    print(f"\ncallback body {len(rsa_body)} B (envelope), decrypted resource {len(json.dumps(payload))} B;"
          " the full path includes the timestamp window, key lookup by serial, JSON parse and credentials.")
    print(f"\n(callback_verify.py took {time.perf_counter() - begun:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
