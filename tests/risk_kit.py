"""A software platform authenticator (P-256, ``none`` attestation) built from ``cryptography`` and ``cbor2``: it
answers WebAuthn registration and authentication options the way a browser plus Touch ID would."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.sign_count = 0

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def register(self, options: dict[str, Any]) -> dict[str, Any]:
        client_data = json.dumps({"type": "webauthn.create", "challenge": options["challenge"], "origin": self.origin,
                                  "crossOrigin": False}).encode()
        rp_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose()
        auth_data = rp_hash + bytes([0x45]) + struct.pack(">I", self.sign_count) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64u(self.credential_id), "rawId": b64u(self.credential_id), "type": "public-key",
                "response": {"clientDataJSON": b64u(client_data), "attestationObject": b64u(attestation)},
                "authenticatorAttachment": "platform", "clientExtensionResults": {}}

    def assert_(self, options: dict[str, Any], *, user_verified: bool = True, challenge_override: bytes | None = None,
                rp_id: str | None = None) -> dict[str, Any]:
        self.sign_count += 1
        challenge = b64u(challenge_override) if challenge_override is not None else options["challenge"]
        client_data = json.dumps({"type": "webauthn.get", "challenge": challenge, "origin": self.origin,
                                  "crossOrigin": False}).encode()
        flags = 0x01 | (0x04 if user_verified else 0)
        auth_data = (hashlib.sha256((rp_id or options["rpId"]).encode()).digest() + bytes([flags])
                     + struct.pack(">I", self.sign_count))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": b64u(self.credential_id), "rawId": b64u(self.credential_id), "type": "public-key",
                "response": {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                             "signature": b64u(signature), "userHandle": None},
                "authenticatorAttachment": "platform", "clientExtensionResults": {}}
