"""Hypothesis fuzz of SM2 verification with hostile signatures and keys.

Not collected by the suite on its own (the name does not start with ``test_``): ``test_sm2.py`` runs this file
in a child process, so that a crash inside the C engine fails that test instead of killing the test run, the
way it would kill a Lambda. Run it directly with ``python -m pytest tests/unit/crypto/sm2_fuzz_cases.py``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.crypto import sm
from chalicelib.crypto.sm2_engines import N, P, TongsuoEngine
from tests.unit.crypto.sm2_der import der_signature

PRIVATE_HEX, PUBLIC_HEX = sm.sm2_generate_keypair()
MESSAGE = b'{"id":"EV-1","resource":{"ciphertext":"..."}}'
SIGNATURE = sm.sm2_sign(PRIVATE_HEX, PUBLIC_HEX, MESSAGE)
POINT = bytes.fromhex(PUBLIC_HEX)
ENGINE = TongsuoEngine()

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
@given(st.integers(min_value=1, max_value=N - 1), st.integers(min_value=1, max_value=N - 1), st.binary(max_size=64))
def test_the_engine_refuses_in_range_forgeries(r: int, s: int, message: bytes) -> None:
    """What reaches Tongsuo's arithmetic once sm.py's checks pass: well-formed, in range, wrong."""
    assert ENGINE.verify(POINT, message, der_signature(r, s)) is False


@FUZZ
@given(st.one_of(st.binary(max_size=200), integers.flatmap(lambda r: integers.map(lambda s: der_signature(r, s)))))
def test_tongsuo_itself_refuses_unchecked_signatures(signature: bytes) -> None:
    """Defence in depth: with sm.py's DER and range checks bypassed, the engine still answers False."""
    assert ENGINE.verify(POINT, MESSAGE, signature) is (signature == SIGNATURE)
