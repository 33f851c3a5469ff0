"""SM2 sign and verify: the compiled engine the hub uses (Tongsuo, via tongsuopy) against the pure-Python one it
replaced (gmssl), in the same run, with OpenSSL's P-256 ECDSA as a fixed anchor for the machine's speed.

"hub path" rows are ``chalicelib.crypto.sm.sm2_sign`` / ``sm2_verify`` as every channel calls them: DER
encoding and checks, Z from the per-key cache, e = SM3(Z || M) with OpenSSL, then the engine. The "pure
Python" rows run that same function with the engine swapped for gmssl's, which is the path the hub had
before. "engine only" rows call the engine directly (checks and DER re-encoding left out). When gmssl-pyx
(GmSSL 3, the other compiled candidate; not a dependency) is installed, it is timed beside them: that is how
the engine was chosen (``pip install gmssl-pyx`` to repeat it).

Each case is calibrated to ~``--target-s`` per run and repeated ``--repeat`` times. Two figures per case:
wall µs/op (median run) and CPU µs/op (``time.thread_time``, the CPU this thread was given: on a shared,
busy machine it moves far less than the wall clock). The budget is 500 µs per operation.

    python bench/sm2.py [--repeat 7] [--target-s 0.2]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import calibrate, fmt, median, table  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from chalicelib.crypto import sm  # noqa: E402
from chalicelib.crypto.sm2_engines import PurePythonEngine, SM2Engine, TongsuoEngine  # noqa: E402
from tests.vectors import load_vectors  # noqa: E402

BUDGET_US = 500.0


@dataclass
class Result:
    name: str
    wall_us: float
    cpu_us: float
    iterations: int


def bench(name: str, fn: Callable[[], object], *, repeat: int, target_s: float) -> Result:
    number = calibrate(fn, target_s)  # the warm-up fills the per-key caches, as a warm Lambda has them
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(number):
            fn()
        cpus.append((time.thread_time() - cpu) / number * 1e6)
        walls.append((time.perf_counter() - wall) / number * 1e6)
    return Result(name, median(walls), median(cpus), number)


@contextmanager
def engine(chosen: SM2Engine) -> Iterator[None]:
    """Run the hub's own sm2_sign/sm2_verify on another engine (the path before this change, for the anchor)."""
    saved = sm.sm2_engine()
    sm._engine = chosen
    try:
        yield
    finally:
        sm._engine = saved


def gmssl_pyx_cases(private_hex: str, public_hex: str, message: bytes) -> list[tuple[str, Callable[[], object]]]:
    """gmssl-pyx on the same key and message, when installed (the candidate Tongsuo was chosen over)."""
    try:
        import gmssl_pyx  # type: ignore[import-not-found]
    except ImportError:
        print("(gmssl-pyx not installed: its rows are left out)")
        return []
    private, public = bytes.fromhex(private_hex), bytes.fromhex(public_hex)
    signature = gmssl_pyx.sm2_sign_sm3_digest(private, sm.sm3_message_digest(public_hex, message))
    assert sm.sm2_verify(public_hex, message, signature)

    def verify() -> object:  # the hub's own e = SM3(Z || M) with OpenSSL, then GmSSL on the digest
        return gmssl_pyx.sm2_verify_sm3_digest(public, sm.sm3_message_digest(public_hex, message), signature)

    def sign() -> object:
        return gmssl_pyx.sm2_sign_sm3_digest(private, sm.sm3_message_digest(public_hex, message))

    return [("candidate: SM2 verify, gmssl-pyx (GmSSL 3)", verify), ("candidate: SM2 sign, gmssl-pyx (GmSSL 3)", sign)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--target-s", type=float, default=0.2)
    args = parser.parse_args()
    begun = time.perf_counter()
    compiled, pure = TongsuoEngine(), PurePythonEngine()
    assert sm.sm2_engine().name == compiled.name, f"the hub is not on Tongsuo here: {sm.sm2_engine().name}"

    private_hex, public_hex = sm.sm2_generate_keypair()
    body = b'{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00","resource_type":' \
           b'"encrypt-resource","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_SM4_GCM",' \
           b'"ciphertext":"' + base64.b64encode(os.urandom(600)) + b'","nonce":"fdasflkja484w"}}'
    message = b"1700000000\nfdasflkja484w\n" + body + b"\n"  # what WeChat signs on a callback
    signature = sm.sm2_sign(private_hex, public_hex, message)
    vector = load_vectors()["wechat_sm2_signature"]
    vector_key, vector_message = vector["public_key_uncompressed_hex"], vector["message"].encode()
    vector_signature = base64.b64decode(vector["signature_b64_der"])
    point, scalar = bytes.fromhex(public_hex), int(private_hex, 16)
    for chosen in (compiled, pure):  # both paths accept what the other signs, and the shared vector
        with engine(chosen):
            assert sm.sm2_verify(public_hex, message, signature)
            assert sm.sm2_verify(vector_key, vector_message, vector_signature)
            assert sm.sm2_verify(public_hex, message, sm.sm2_sign(private_hex, public_hex, message))

    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_public, p256_signature = p256.public_key(), p256.sign(message, ec.ECDSA(hashes.SHA256()))

    def hub(chosen: SM2Engine, fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with engine(chosen):
                return fn()
        return run

    def verify() -> object:
        return sm.sm2_verify(public_hex, message, signature)

    def sign() -> object:
        return sm.sm2_sign(private_hex, public_hex, message)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("SM2 verify, hub path, Tongsuo", hub(compiled, verify)),
        ("SM2 verify, hub path, pure Python (gmssl)", hub(pure, verify)),
        ("SM2 sign, hub path, Tongsuo", hub(compiled, sign)),
        ("SM2 sign, hub path, pure Python (gmssl)", hub(pure, sign)),
        ("SM2 verify, shared vector, Tongsuo", lambda: sm.sm2_verify(vector_key, vector_message, vector_signature)),
        ("SM2 verify, engine only, Tongsuo", lambda: compiled.verify(point, message, signature)),
        ("SM2 sign, engine only, Tongsuo", lambda: compiled.sign(scalar, point, message)),
        ("anchor: P-256 ECDSA-SHA256 verify (OpenSSL)",
         lambda: p256_public.verify(p256_signature, message, ec.ECDSA(hashes.SHA256()))),
        ("anchor: P-256 ECDSA-SHA256 sign (OpenSSL)", lambda: p256.sign(message, ec.ECDSA(hashes.SHA256()))),
    ]
    cases += gmssl_pyx_cases(private_hex, public_hex, message)
    results = {name: bench(name, fn, repeat=args.repeat, target_s=args.target_s) for name, fn in cases}

    print(f"## SM2: median of {args.repeat} runs, one core; engine in use: {sm.sm2_engine().name}\n")
    print(table(["operation", "wall µs/op", "CPU µs/op", "ops/s (CPU)", "iterations/run"], [
        [r.name, fmt(r.wall_us), fmt(r.cpu_us), fmt(1e6 / r.cpu_us, 0), str(r.iterations)]
        for r in results.values()]))
    print(f"\nsigned message: {len(message)} B (a WeChat callback's timestamp, nonce and body)")
    for op in ("verify", "sign"):
        new = results[f"SM2 {op}, hub path, Tongsuo"]
        old = results[f"SM2 {op}, hub path, pure Python (gmssl)"]
        anchor = results[f"anchor: P-256 ECDSA-SHA256 {op} (OpenSSL)"]
        verdict = "within" if new.cpu_us <= BUDGET_US else "OVER"
        print(f"SM2 {op}: Tongsuo {fmt(new.cpu_us)} µs CPU ({fmt(new.wall_us)} wall), pure Python "
              f"{fmt(old.cpu_us)} µs CPU: {old.cpu_us / new.cpu_us:.1f}x faster; "
              f"{new.cpu_us / anchor.cpu_us:.1f}x P-256's {op}; {verdict} the {BUDGET_US:.0f} µs budget")
    print(f"\n(sm2.py took {time.perf_counter() - begun:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
