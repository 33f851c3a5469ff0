"""Hypothesis fuzz of SM2 verification with hostile signatures and keys.

Not collected by the suite on its own (the name does not start with ``test_``): ``test_sm2.py`` runs this file
in a child process, so that a crash inside the C engine fails that test instead of killing the test run, the
way it would kill a Lambda. Run it directly with ``python -m pytest tests/unit/crypto/sm2_fuzz_cases.py``.
"""

from __future__ import annotations

import gmssl_pyx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.crypto import sm
from chalicelib.crypto.sm2_backends import CompiledEngine, N, P
from tests.unit.crypto.sm2_der import der_signature

PRIVATE_HEX, PUBLIC_HEX = sm.sm2_generate_keypair()
MESSAGE = b'{"id":"EV-1","resource":{"ciphertext":"..."}}'
SIGNATURE = sm.sm2_sign(PRIVATE_HEX, PUBLIC_HEX, MESSAGE)
POINT = bytes.fromhex(PUBLIC_HEX)
DIGEST = sm.sm3_message_digest(PUBLIC_HEX, MESSAGE)
ENGINE = CompiledEngine()

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

integers = st.one_of(
    st.integers(min_value=-(2**300), max_value=2**300),
    st.sampled_from([0, 1, N - 1, N, N + 1, P, 2**256 - 1, 2**256]),
)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_refused(signature: bytes) -> None:
    assert sm.sm2_verify(PUBLIC_HEX, MESSAGE, signature) is False


@FUZZ
@given(st.integers(min_value=0, max_value=len(SIGNATURE) * 8 - 1), st.integers(min_value=1, max_value=3))
def test_bit_flips_of_a_valid_signature_are_refused(bit: int, width: int) -> None:
    tampered = bytearray(SIGNATURE)
    for offset in range(width):
        position = min(bit + offset, len(SIGNATURE) * 8 - 1)
        tampered[position // 8] ^= 0x80 >> (position % 8)
    assert sm.sm2_verify(PUBLIC_HEX, MESSAGE, bytes(tampered)) is (bytes(tampered) == SIGNATURE)


@FUZZ
@given(st.binary(max_size=len(SIGNATURE) + 8), st.integers(min_value=0, max_value=len(SIGNATURE)))
def test_splices_of_a_valid_signature_are_refused(junk: bytes, cut: int) -> None:
    spliced = SIGNATURE[:cut] + junk
    assert sm.sm2_verify(PUBLIC_HEX, MESSAGE, spliced) is (spliced == SIGNATURE)


@FUZZ
@given(integers, integers)
def test_any_integers_in_der_are_refused(r: int, s: int) -> None:
    assert sm.sm2_verify(PUBLIC_HEX, MESSAGE, der_signature(r, s)) is False


@FUZZ
@given(st.one_of(st.binary(max_size=70).map(bytes.hex), st.text(max_size=140)))
def test_arbitrary_public_keys_are_refused(key: str) -> None:
    assert sm.sm2_verify(key, MESSAGE, SIGNATURE) is (key.strip().lower().removeprefix("04") == PUBLIC_HEX)


@FUZZ
@given(st.integers(min_value=1, max_value=N - 1), st.integers(min_value=1, max_value=N - 1),
       st.binary(min_size=32, max_size=32))
def test_the_engine_refuses_in_range_forgeries(r: int, s: int, digest: bytes) -> None:
    """What reaches GmSSL's arithmetic once sm.py's checks pass: well-formed, in range, wrong."""
    assert ENGINE.verify_digest(POINT, digest, r, s) is False


@FUZZ
@given(st.binary(max_size=80), st.binary(max_size=80), st.binary(max_size=200))
def test_gmssl_pyx_itself_survives_unchecked_input(point: bytes, digest: bytes, signature: bytes) -> None:
    """Defence in depth: even with sm.py's checks bypassed, the library answers or raises, it does not crash."""
    try:
        answer = gmssl_pyx.sm2_verify_sm3_digest(point, digest, signature)
    except gmssl_pyx.GmsslInnerError:
        return
    assert answer is False
