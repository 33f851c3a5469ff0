"""The CDC envelope (chalicelib/banks/cmb/envelope.py): signatures with the UID as SM2 user id, SM4-CBC, the
signed text; checked against the bank sandbox's independent implementation (sandbox/cmbbank/crypto.py)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.banks.cmb import envelope
from chalicelib.crypto.sm import sm2_generate_keypair, sm2_sign_with_id, sm2_verify, sm2_verify_with_id
from chalicelib.crypto.sm2_engines import PurePythonEngine, TongsuoEngine, message_digest
from sandbox.cmbbank import crypto as bank_crypto

UID = "N002466694"
SM4_KEY = "0123456789abcdef"
PRIVATE, PUBLIC = sm2_generate_keypair()


def _document() -> dict[str, Any]:
    return {"request": {"head": {"funcode": "BB1PAYOP", "userid": UID, "reqid": "202612071200000001234567"},
                        "body": {"bb1payopx1": [{"yurRef": "PAYOUT1", "trsAmt": "88.88", "crtNam": "上海某某有限公司"}],
                                 "bb1paybmx1": [{"busMod": "S4000", "busCod": "N02030"}]}}}


def _signed() -> dict[str, Any]:
    return envelope.sign(_document(), UID, PRIVATE, PUBLIC, "20261207120000")


def test_padded_uid_is_the_uid_right_padded_with_zeros_to_16_bytes() -> None:
    assert envelope.padded_uid("N002466694") == b"N002466694000000"
    assert envelope.padded_uid("ABCDEFGHIJKLMNOPQ") == b"ABCDEFGHIJKLMNOP"
    with pytest.raises(ValueError):
        envelope.padded_uid("")


def test_a_signed_document_verifies_and_carries_a_64_byte_signature() -> None:
    signed = _signed()
    assert signed["signature"]["sigtim"] == "20261207120000"
    assert len(base64.b64decode(signed["signature"]["sigdat"])) == 64
    assert envelope.verify(signed, UID, PUBLIC)
    assert "signature" not in _document()  # the caller's document is left alone


def test_the_signed_text_is_the_key_sorted_document_with_the_placeholder() -> None:
    signed = _signed()
    raw = base64.b64decode(signed["signature"]["sigdat"])
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    text = envelope.canonical_text({**signed, "signature": {"sigdat": envelope.SIGDAT_PLACEHOLDER,
                                                            "sigtim": "20261207120000"}})
    assert text.startswith('{"request":{"body":{"bb1paybmx1":[{"busCod":"N02030","busMod":"S4000"}]')
    assert text.endswith('"signature":{"sigdat":"__signature_sigdat__","sigtim":"20261207120000"}}')
    assert "上海某某有限公司" in text  # UTF-8 as is, not \\u escapes
    assert sm2_verify_with_id(PUBLIC, text.encode(), der, b"N002466694000000")
    assert not sm2_verify(PUBLIC, text.encode(), der)  # the default user id is not what CMB uses


@pytest.mark.parametrize("path", [("request", "body", "bb1payopx1", 0, "trsAmt"), ("request", "head", "reqid"),
                                  ("signature", "sigtim")])
def test_a_changed_field_fails_verification(path: tuple[Any, ...]) -> None:
    signed = _signed()
    node: Any = signed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = node[path[-1]][:-1] + ("9" if node[path[-1]][-1] != "9" else "8")
    assert not envelope.verify(signed, UID, PUBLIC)


def test_a_flipped_signature_byte_a_wrong_key_a_wrong_uid_or_no_signature_fail() -> None:
    signed = _signed()
    raw = bytearray(base64.b64decode(signed["signature"]["sigdat"]))
    raw[10] ^= 0x01
    flipped = json.loads(json.dumps(signed))
    flipped["signature"]["sigdat"] = base64.b64encode(bytes(raw)).decode()
    assert not envelope.verify(flipped, UID, PUBLIC)
    assert not envelope.verify(signed, UID, sm2_generate_keypair()[1])
    assert not envelope.verify(signed, "N002466695", PUBLIC)
    for sigdat in (envelope.SIGDAT_PLACEHOLDER, "", "not base64!", base64.b64encode(b"short").decode()):
        broken = json.loads(json.dumps(signed))
        broken["signature"]["sigdat"] = sigdat
        assert not envelope.verify(broken, UID, PUBLIC)
    assert not envelope.verify(_document(), UID, PUBLIC)


def test_sm4_cbc_round_trip_and_refusals() -> None:
    signed = _signed()
    data = envelope.seal(signed, UID, SM4_KEY)
    assert envelope.unseal(data, UID, SM4_KEY) == signed
    with pytest.raises(envelope.EnvelopeError):
        envelope.unseal(data, UID, "fedcba9876543210")
    with pytest.raises(envelope.EnvelopeError):
        envelope.unseal(data[:-8], UID, SM4_KEY)
    with pytest.raises(envelope.EnvelopeError):
        envelope.unseal("%%%", UID, SM4_KEY)
    with pytest.raises(ValueError):
        envelope.seal(signed, UID, "short")


def test_sm4_cbc_is_the_standard_cipher_with_the_uid_as_iv() -> None:
    """Decrypted here with ``cryptography`` alone: SM4, CBC, IV = padded UID, PKCS#7."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    data = base64.b64decode(envelope.seal({"a": "b"}, UID, SM4_KEY))
    decryptor = Cipher(algorithms.SM4(SM4_KEY.encode()), modes.CBC(b"N002466694000000")).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()
    assert plain == b'{"a":"b"}'


def test_the_hub_and_the_bank_sandbox_read_each_others_envelopes() -> None:
    bank_key = bank_crypto.Sm2Key.generate()
    from_bank = bank_crypto.seal(bank_crypto.sign_document({"response": {"head": {"resultcode": "SUC0000"}}}, UID,
                                                           bank_key, "20261207120000"), UID, SM4_KEY)
    assert envelope.verify(envelope.unseal(from_bank, UID, SM4_KEY), UID, bank_key.public_hex)
    from_hub = envelope.seal(_signed(), UID, SM4_KEY)
    assert bank_crypto.verify_document(bank_crypto.unseal(from_hub, UID, SM4_KEY), UID, PUBLIC)


def test_both_sm2_engines_sign_and_verify_digests_with_another_user_id() -> None:
    point = bytes.fromhex(PUBLIC)
    digest = message_digest(PUBLIC, b"message", b"N002466694000000")
    tongsuo, gmssl = TongsuoEngine(), PurePythonEngine()
    for signer, verifier in ((tongsuo, gmssl), (gmssl, tongsuo)):
        signature = signer.sign_digest(int(PRIVATE, 16), point, digest)
        assert verifier.verify_digest(point, digest, signature)
        assert not verifier.verify_digest(point, message_digest(PUBLIC, b"message"), signature)
    assert not sm2_verify_with_id(PUBLIC, b"message", b"\x30\x00", b"N002466694000000")
    signature = sm2_sign_with_id(PRIVATE, PUBLIC, b"message", b"1234567812345678")
    assert sm2_verify(PUBLIC, b"message", signature)  # the default id gives the usual signature


def test_reqid_is_millisecond_time_then_seven_random_digits() -> None:
    now = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
    reqids = {envelope.new_reqid(now) for _ in range(50)}
    assert all(re.fullmatch(r"20261207120000123\d{7}", r) for r in reqids)
    assert len(reqids) > 45


_json_leaf = st.text(max_size=8)
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                                max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_canonical_text_is_json_of_the_same_value_with_keys_sorted_at_every_level(value: Any) -> None:
    text = envelope.canonical_text(value)
    assert json.loads(text) == value
    assert text == envelope.canonical_text(json.loads(json.dumps(value, sort_keys=False)))

    def keys_sorted(node: Any) -> bool:
        if isinstance(node, dict):
            return list(node) == sorted(node) and all(keys_sorted(v) for v in node.values())
        if isinstance(node, list):
            return all(keys_sorted(v) for v in node)
        return True

    assert keys_sorted(json.loads(text, object_pairs_hook=dict))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_unseal_never_raises_anything_but_envelope_error(noise: bytes) -> None:
    for data in (base64.b64encode(noise).decode(), noise.decode("latin-1")):
        try:
            envelope.unseal(data, UID, SM4_KEY)
        except envelope.EnvelopeError:
            pass
