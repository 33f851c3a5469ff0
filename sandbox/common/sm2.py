"""SM2 as the sandboxes' banks compute it, written against gmssl (curve arithmetic) and ``cryptography`` (SM3)
directly: a sandbox never imports the hub, so it stays a judge of the hub's own SM2. Keys are hex (the private
scalar; the public point ``x||y``); each bank wraps ``r, s`` in its own encoding (DER, or 64 raw bytes)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from gmssl import sm2

ORDER = int(sm2.default_ecc_table["n"], 16)
DEFAULT_USER_ID = b"1234567812345678"


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


@lru_cache(maxsize=64)
def _z(public_hex: str, user_id: bytes) -> bytes:
    """Z = SM3(ENTL || user id || a || b || xG || yG || xA || yA), GM/T 0003.2."""
    table = sm2.default_ecc_table
    fixed = bytes.fromhex(table["a"] + table["b"] + table["g"] + public_hex)
    return sm3((len(user_id) * 8).to_bytes(2, "big") + user_id + fixed)


def signed_digest(public_hex: str, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """The digest SM2 signs, SM3(Z || M), with OpenSSL's SM3 (gmssl's is pure Python and slow on big bodies)."""
    return sm3(_z(public_hex, user_id) + message)


def curve(private_hex: str, public_hex: str) -> sm2.CryptSM2:
    found = sm2.CryptSM2(private_key=private_hex, public_key="")
    found.public_key = public_hex  # set after init: gmssl's lstrip("04") would eat leading digits of x
    return found


def public_key_hex(text: str) -> str:
    """Normalise ``04||x||y`` or ``x||y`` hex to ``x||y`` lower-case; ValueError otherwise."""
    key = text.strip().lower()
    if len(key) == 130 and key.startswith("04"):
        key = key[2:]
    if len(key) != 128:
        raise ValueError("SM2 public key must be 64 bytes of hex (x||y), optionally prefixed by 04")
    int(key, 16)
    return key


@dataclass(frozen=True)
class Sm2Key:
    private_hex: str = field(repr=False)
    public_hex: str

    @classmethod
    def generate(cls) -> Sm2Key:
        scalar = secrets.randbelow(ORDER - 2) + 1
        return cls(f"{scalar:064x}", public_key_hex(curve("", "")._kg(scalar, sm2.default_ecc_table["g"])))

    def sign_rs(self, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> tuple[int, int]:
        signer = curve(self.private_hex, self.public_hex)
        while True:  # gmssl returns None for the (negligible) degenerate nonces; draw again
            raw = signer.sign(signed_digest(self.public_hex, message, user_id),
                              f"{secrets.randbelow(ORDER - 1) + 1:064x}")
            if raw:
                raw = raw.rjust(128, "0")
                return int(raw[:64], 16), int(raw[64:], 16)


def verify_rs(public_hex: str, message: bytes, r: int, s: int, user_id: bytes = DEFAULT_USER_ID) -> bool:
    """False for anything out of range; the public key must be normalised (``public_key_hex``)."""
    if not (0 < r < ORDER and 0 < s < ORDER):
        return False
    return bool(curve("", public_hex).verify(f"{r:064x}{s:064x}", signed_digest(public_hex, message, user_id)))
