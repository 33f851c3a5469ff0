"""SM2 on Tongsuo: the shared vector, agreement with gmssl's pure-Python reference, and refusal of
malformed signatures and keys (the hypothesis fuzz runs in a child process: a crash in C must fail this test,
not take the test run down with it)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from gmssl import sm2 as gmssl_sm2

from chalicelib.crypto import sm
from chalicelib.crypto.sm2_engines import GX, GY, A, B, N, P, PurePythonEngine, TongsuoEngine
from tests.unit.crypto.sm2_der import der_signature
from tests.vectors import load_vectors

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
VECTOR = load_vectors()["wechat_sm2_signature"]
COMPILED, PURE = TongsuoEngine(), PurePythonEngine()


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return sm.sm2_generate_keypair()


def test_the_hub_signs_and_verifies_on_tongsuo() -> None:
    assert sm.sm2_engine().name == TongsuoEngine.name


def test_importing_the_module_loads_no_engine() -> None:
    """Only a function that uses SM2 pays for loading Tongsuo (or gmssl), on its first SM2 operation."""
    probe = "import sys, chalicelib.crypto.sm; print(sorted(m for m in ('tongsuopy', 'gmssl') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_curve_constants_are_gmssls_and_the_base_point_is_on_the_curve() -> None:
    table = gmssl_sm2.default_ecc_table
    assert (P, A, B, N) == tuple(int(table[k], 16) for k in ("p", "a", "b", "n"))
    assert f"{GX:064x}{GY:064x}" == table["g"].lower()
    assert (GY * GY - (GX**3 + A * GX + B)) % P == 0


def test_the_shared_vector_verifies_on_both_engines() -> None:
    key, message = VECTOR["public_key_uncompressed_hex"], VECTOR["message"].encode()
    signature = base64.b64decode(VECTOR["signature_b64_der"])
    assert VECTOR["user_id"].encode() == sm.DEFAULT_USER_ID
    assert sm.sm2_verify(key, message, signature)
    assert not sm.sm2_verify(key, message + b".", signature)
    point = bytes.fromhex(sm.normalize_public_key_hex(key))
    assert COMPILED.verify(point, message, signature)
    assert PURE.verify(point, message, signature)
    assert not COMPILED.verify(point, message + b".", signature)


@pytest.mark.parametrize("signer", [COMPILED, PURE], ids=["compiled-signs", "pure-signs"])
@pytest.mark.parametrize("verifier", [COMPILED, PURE], ids=["compiled-verifies", "pure-verifies"])
def test_the_engines_accept_each_others_signatures(signer, verifier, keypair) -> None:
    private_hex, public_hex = keypair
    point, message = bytes.fromhex(public_hex), b'{"out_trade_no":"o-1","amount":{"total":1}}'
    signature = signer.sign(int(private_hex, 16), point, message)
    r, s = decode_dss_signature(signature)
    assert 0 < r < N and 0 < s < N
    assert verifier.verify(point, message, signature)
    assert not verifier.verify(point, message[:-1], signature)


def test_a_hub_signature_verifies_under_gmssls_own_z_computation(keypair) -> None:
    """gmssl's ``verify_with_sm3`` computes Z and e itself, in pure Python: an independent check of ours."""
    private_hex, public_hex = keypair
    message = b"NOTIFY\n1700000000\nnonce\n{\"a\":1}\n"
    r, s = decode_dss_signature(sm.sm2_sign(private_hex, "04" + public_hex.upper(), message))
    curve = gmssl_sm2.CryptSM2(private_key="", public_key="")
    curve.public_key = public_hex
    assert curve.verify_with_sm3(f"{r:064x}{s:064x}", message)
    gmssl_signed = gmssl_sm2.CryptSM2(private_key=private_hex, public_key="")
    gmssl_signed.public_key = public_hex
    theirs = gmssl_signed.sign_with_sm3(message, "1" * 64)
    assert sm.sm2_verify(public_hex, message, encode_dss_signature(int(theirs[:64], 16), int(theirs[64:], 16)))


def test_keypairs_are_fresh_and_on_the_curve() -> None:
    first, second = sm.sm2_generate_keypair(), sm.sm2_generate_keypair()
    assert first[0] != second[0]
    for private_hex, public_hex in (first, second):
        assert len(private_hex) == 64 and 0 < int(private_hex, 16) < N - 1
        assert sm.sm2_verify(public_hex, b"m", sm.sm2_sign(private_hex, public_hex, b"m"))


def test_signing_twice_uses_fresh_nonces(keypair) -> None:
    private_hex, public_hex = keypair
    assert sm.sm2_sign(private_hex, public_hex, b"m") != sm.sm2_sign(private_hex, public_hex, b"m")


@pytest.mark.parametrize("bad", ["zz" * 32, "", "0" * 64, f"{N - 1:064x}", f"{N:064x}"],
                         ids=["not-hex", "empty", "zero", "n-1", "n"])
def test_signing_refuses_a_bad_private_key_without_quoting_it(bad, keypair) -> None:
    with pytest.raises(ValueError, match="SM2 private key") as raised:
        sm.sm2_sign(bad, keypair[1], b"m")
    assert not bad or bad not in str(raised.value)


def test_signing_refuses_a_public_key_off_the_curve_or_not_its_own(keypair) -> None:
    with pytest.raises(ValueError, match="not a point on the SM2 curve"):
        sm.sm2_sign(keypair[0], "11" * 64, b"m")
    with pytest.raises(ValueError, match="does not match its public key"):
        sm.sm2_sign(keypair[0], sm.sm2_generate_keypair()[1], b"m")


def _malformed(signature: bytes) -> dict[str, bytes]:
    r, s = decode_dss_signature(signature)
    body = signature[2:]
    return {
        "empty": b"",
        "truncated": signature[:-1],
        "trailing byte": signature + b"\x00",
        "raw r||s": r.to_bytes(32, "big") + s.to_bytes(32, "big"),
        "long-form length": b"\x30\x81" + bytes([len(body)]) + body,
        "padded r": b"\x30" + bytes([len(body) + 2]) + b"\x02" + bytes([body[1] + 2]) + b"\x00\x00" + body[2:],
        "r = 0": encode_dss_signature(0, s),
        "s = 0": encode_dss_signature(r, 0),
        "r = n": encode_dss_signature(N, s),
        "s = n": encode_dss_signature(r, N),
        "r negative": der_signature(-r, s),
        "r + s = n": encode_dss_signature(r, (N - r) % N),
        "r + n": encode_dss_signature(r + N, s),
        "swapped": encode_dss_signature(s, r),
        "not a sequence": b"\x31" + signature[1:],
    }


def test_verification_refuses_malformed_signatures(keypair) -> None:
    private_hex, public_hex = keypair
    signature = sm.sm2_sign(private_hex, public_hex, b"m")
    assert sm.sm2_verify(public_hex, b"m", signature)
    for name, bad in _malformed(signature).items():
        assert sm.sm2_verify(public_hex, b"m", bad) is False, name


@pytest.mark.parametrize("key", ["", "04", "11" * 64, "00" * 64, "zz" * 64, "05" + "11" * 64, f"{P:064x}" * 2, "ab"],
                         ids=["empty", "prefix only", "off curve", "zero point", "not hex", "bad prefix",
                              "coordinates = p", "short"])
def test_verification_refuses_bad_public_keys(key, keypair) -> None:
    signature = sm.sm2_sign(keypair[0], keypair[1], b"m")
    assert sm.sm2_verify(key, b"m", signature) is False


def test_a_signature_for_another_key_is_refused(keypair) -> None:
    _, other_public = sm.sm2_generate_keypair()
    assert not sm.sm2_verify(other_public, b"m", sm.sm2_sign(keypair[0], keypair[1], b"m"))


def test_malformed_input_fuzz_never_crashes_the_process() -> None:
    """tests/unit/crypto/sm2_fuzz_cases.py under hypothesis, in a child: a segfault in C would kill a Lambda."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "sm2_fuzz_cases.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert result.returncode >= 0, f"the fuzz child was killed by signal {-result.returncode}: {result.stdout[-2000:]}"
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b\d+ passed\b", result.stdout), result.stdout[-1000:]


FAILING_VERIFY = """
import os
from chalicelib.crypto import sm
private_hex, public_hex = sm.sm2_generate_keypair()
signature = sm.sm2_sign(private_hex, public_hex, b"signed body")
print(public_hex + "|" + signature.hex(), flush=True)
assert sm.sm2_verify(public_hex, b"other body", signature) is False
"""


def test_a_failed_verification_writes_nothing_to_stderr() -> None:
    """Forged callbacks are logged by the hub, as JSON; the engine adds no lines of its own (GmSSL-based
    wheels print source locations to stderr on every failed verification, one reason Tongsuo was chosen)."""
    result = subprocess.run([sys.executable, "-c", FAILING_VERIFY], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("|") == 1
    assert result.stderr == ""


WITHOUT_TONGSUO = """
import sys
sys.modules["tongsuopy"] = None  # as on a platform with no tongsuopy wheel: importing it raises ImportError
from chalicelib.crypto import sm
private_hex, public_hex = sm.sm2_generate_keypair()
signature = sm.sm2_sign(private_hex, public_hex, b"body")
print(sm.sm2_engine().name, sm.sm2_verify(public_hex, b"body", signature), sm.sm2_verify(public_hex, b"b0dy", signature))
"""


def test_without_tongsuo_the_hub_falls_back_to_gmssl_and_says_so() -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT_TONGSUO], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{PurePythonEngine.name} True False"
    assert "SM2 engine: tongsuopy unavailable" in result.stderr
