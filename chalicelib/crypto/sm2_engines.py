"""SM2's fixed parts (the curve, Z and e) and the two engines that do its curve work.

The hub signs and verifies on **Tongsuo** (Ant Group's OpenSSL fork with SM2/SM3/SM4, through its Python SDK
``tongsuopy``): compiled C, about 30 times faster than gmssl's pure Python (``bench/sm2.py``). tongsuopy
publishes a manylinux2014 (glibc 2.17) x86_64 wheel, so it loads on the Lambda python3.11 runtime (Amazon
Linux 2, glibc 2.26); layers/build.py fetches that wheel. gmssl stays installed: it is the engine used when
tongsuopy cannot be imported (a platform without a wheel) and the reference the tests hold Tongsuo to.

Engines are handed checked input only (``sm.py``): the point on the curve, the scalar in range, the signature
strict DER with ``0 < r, s < n``. Tongsuo's own parser refuses malformed DER too (tests fuzz it directly).
Engines are imported on first use, not with this module: Tongsuo costs tens of milliseconds to load, which
only a function that signs or verifies SM2 should pay, once per container.
"""

from __future__ import annotations

import logging
import secrets
from functools import lru_cache
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

log = logging.getLogger(__name__)

# GM/T 0003.5 (GB/T 32918.5) recommended curve: y^2 = x^3 + ax + b over F_p, base point G of prime order n.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

# The user id every channel uses (GM/T 0009's default); Tongsuo applies the same one when none is set.
DEFAULT_USER_ID = b"1234567812345678"


def sm3_digest(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


@lru_cache(maxsize=256)
def z_value(point_hex: str, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """Z = SM3(ENTL || user id || a || b || xG || yG || xA || yA) (GM/T 0003.2), per public key ``x||y``."""
    if len(user_id) >= 8192:
        raise ValueError("SM2 user id must be shorter than 8192 bytes (ENTL is 16 bits of bit length)")
    entl = (len(user_id) * 8).to_bytes(2, "big")
    curve = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))
    return sm3_digest(entl + user_id + curve + bytes.fromhex(point_hex))


def message_digest(point_hex: str, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """e = SM3(Z || message), what SM2 signs (OpenSSL's SM3: gmssl's costs ~2 ms per kilobyte)."""
    return sm3_digest(z_value(point_hex, user_id) + message)


class SM2Engine(Protocol):
    name: str

    def generate(self) -> tuple[int, bytes]:
        """A fresh key pair: (private scalar, public point ``x || y``, 64 bytes)."""

    def sign(self, scalar: int, point: bytes, message: bytes) -> bytes:
        """DER SM3withSM2 signature of ``message`` (default user id), nonce from the OS CSPRNG."""

    def verify(self, point: bytes, message: bytes, der_signature: bytes) -> bool:
        """Whether ``der_signature`` signs ``message`` under the public point; False, never an error, if not."""

    def sign_digest(self, scalar: int, point: bytes, digest: bytes) -> bytes:
        """DER SM2 signature of a digest ``e`` computed by the caller (a user id other than the default)."""

    def verify_digest(self, point: bytes, digest: bytes, der_signature: bytes) -> bool:
        """``verify`` for a digest ``e`` computed by the caller; False, never an error, if it does not verify."""


class TongsuoEngine:
    """Tongsuo through tongsuopy. Key objects are cached: building one costs more than a signature."""

    name = "tongsuopy (Tongsuo, compiled)"

    def __init__(self) -> None:
        from tongsuopy.crypto import hashes as tongsuo_hashes  # ImportError here selects the fallback
        from tongsuopy.crypto.asymciphers import ec
        from tongsuopy.crypto.exceptions import InternalError, InvalidSignature

        self._ec = ec
        # tongsuopy names every EC signature scheme "ECDSA"; on an SM2 key with SM3 it is SM2 signing, Z
        # included (checked against gmssl and the shared vector by the tests).
        self._scheme = ec.ECDSA(tongsuo_hashes.SM3())
        self._refusals = (InvalidSignature, InternalError)  # InternalError: DER Tongsuo could not parse
        self._public_key = lru_cache(maxsize=256)(self._load_public_key)
        self._private_key = lru_cache(maxsize=16)(self._load_private_key)

    def _numbers(self, point: bytes) -> Any:
        x, y = int.from_bytes(point[:32], "big"), int.from_bytes(point[32:], "big")
        return self._ec.EllipticCurvePublicNumbers(x, y, self._ec.SM2())

    def _load_public_key(self, point: bytes) -> Any:
        return self._numbers(point).public_key()

    def _load_private_key(self, scalar: int, point: bytes) -> Any:
        try:
            return self._ec.EllipticCurvePrivateNumbers(scalar, self._numbers(point)).private_key()
        except ValueError:
            raise ValueError("SM2 private key does not match its public key") from None

    def generate(self) -> tuple[int, bytes]:
        numbers = self._ec.generate_private_key(self._ec.SM2()).private_numbers()
        public = numbers.public_numbers
        return numbers.private_value, public.x.to_bytes(32, "big") + public.y.to_bytes(32, "big")

    def sign(self, scalar: int, point: bytes, message: bytes) -> bytes:
        return bytes(self._private_key(scalar, point).sign(message, self._scheme))

    def verify(self, point: bytes, message: bytes, der_signature: bytes) -> bool:
        try:
            self._public_key(point).verify(der_signature, message, self._scheme)
        except self._refusals:
            return False
        return True

    # tongsuopy cannot set an SM2 user id, so a digest made with another id is signed through EVP_PKEY_sign:
    # on an SM2 key, Tongsuo's EVP_PKEY_sign/verify take ``e`` as it is (no Z, no hashing).
    def sign_digest(self, scalar: int, point: bytes, digest: bytes) -> bytes:
        from tongsuopy.backends.tongsuo.backend import backend

        lib, ffi = backend._lib, backend._ffi
        ctx = ffi.gc(lib.EVP_PKEY_CTX_new(self._private_key(scalar, point)._evp_pkey, ffi.NULL), lib.EVP_PKEY_CTX_free)
        size = ffi.new("size_t *")
        if lib.EVP_PKEY_sign_init(ctx) != 1 or lib.EVP_PKEY_sign(ctx, ffi.NULL, size, digest, len(digest)) != 1:
            backend._consume_errors()
            raise ValueError("SM2 digest signing could not start")
        buffer = ffi.new("unsigned char[]", size[0])
        if lib.EVP_PKEY_sign(ctx, buffer, size, digest, len(digest)) != 1:
            backend._consume_errors()
            raise ValueError("SM2 digest signing failed")
        return bytes(ffi.buffer(buffer)[: size[0]])

    def verify_digest(self, point: bytes, digest: bytes, der_signature: bytes) -> bool:
        from tongsuopy.backends.tongsuo.backend import backend

        lib, ffi = backend._lib, backend._ffi
        ctx = ffi.gc(lib.EVP_PKEY_CTX_new(self._public_key(point)._evp_pkey, ffi.NULL), lib.EVP_PKEY_CTX_free)
        verified = lib.EVP_PKEY_verify_init(ctx) == 1 and \
            lib.EVP_PKEY_verify(ctx, der_signature, len(der_signature), digest, len(digest)) == 1
        if not verified:
            backend._consume_errors()
        return bool(verified)


class PurePythonEngine:
    """gmssl's curve arithmetic (pure Python, ~30x slower): the fallback and the tests' reference."""

    name = "gmssl (pure Python)"

    def __init__(self) -> None:
        from gmssl import sm2

        self._sm2 = sm2

    def _curve(self, scalar: int, point: bytes) -> Any:
        curve = self._sm2.CryptSM2(private_key=f"{scalar:064x}" if scalar else "", public_key="")
        curve.public_key = point.hex()  # after init: gmssl's lstrip("04") would eat leading digits of x
        return curve

    def generate(self) -> tuple[int, bytes]:
        scalar = secrets.randbelow(N - 2) + 1
        public_hex = self._curve(0, b"")._kg(scalar, f"{GX:064x}{GY:064x}")
        return scalar, bytes.fromhex(public_hex)

    def sign(self, scalar: int, point: bytes, message: bytes) -> bytes:
        return self.sign_digest(scalar, point, message_digest(point.hex(), message))

    def verify(self, point: bytes, message: bytes, der_signature: bytes) -> bool:
        return self.verify_digest(point, message_digest(point.hex(), message), der_signature)

    def sign_digest(self, scalar: int, point: bytes, digest: bytes) -> bytes:
        curve = self._curve(scalar, point)
        while True:
            # gmssl's default nonce comes from ``random`` (Mersenne Twister, predictable): a guessable k reveals
            # the private key, so draw it from the OS CSPRNG. gmssl returns None for a degenerate k; draw again.
            raw = curve.sign(digest, f"{secrets.randbelow(N - 1) + 1:064x}")
            if raw:
                half = len(raw) // 2
                return encode_dss_signature(int(raw[:half], 16), int(raw[half:], 16))

    def verify_digest(self, point: bytes, digest: bytes, der_signature: bytes) -> bool:
        try:
            r, s = decode_dss_signature(der_signature)
        except ValueError:
            return False
        if not (0 < r < N and 0 < s < N):
            return False
        return bool(self._curve(0, point).verify(f"{r:064x}{s:064x}", digest))


def load_engine() -> SM2Engine:
    """Tongsuo when its wheel is installed (the layer and the venv always have it), else gmssl."""
    try:
        return TongsuoEngine()
    except ImportError as missing:
        # Still correct, ~30x slower: say so once per process rather than let callbacks slow down unexplained.
        log.warning("SM2 engine: tongsuopy unavailable (%s); using gmssl's pure Python", missing,
                    extra={"event": "sm2_engine_fallback"})
        return PurePythonEngine()
