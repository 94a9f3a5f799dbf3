"""Secrets kept at rest that must be readable again: AES-256-GCM (NIST SP 800-38D) under a key derived
from AUTHENTIK_SECRET_KEY with HKDF-SHA256 (RFC 5869), one derived key per purpose.

authentik keeps an API token's key in the database in the clear and shows it again through
``view_key``; Gatehouse keeps it sealed instead, so a copy of the database alone (a backup, a
read-only SQL injection) does not reveal working keys. The ``context`` (e.g. the row's id) is the
GCM associated data: a sealed value copied onto another row does not open there. A value sealed
under a different secret key does not open at all (``SealError``), so a restore under the wrong key
is reported, never answered with a key the core would refuse.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
NONCE_BYTES = 12  # SP 800-38D §8.2.2: 96-bit random nonces


class SealError(ValueError):
    """The value does not open with this secret key and context (another key, tampered, or not ours)."""


def _key(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"gatehouse/sealing/{VERSION}/{purpose}".encode()).derive(secret.encode())


def seal(plaintext: str, *, secret: str, purpose: str, context: str) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(_key(secret, purpose)).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(value: str, *, secret: str, purpose: str, context: str) -> str:
    version, _, body = (value or "").partition(".")
    if version != VERSION or not body:
        raise SealError(f"not a sealed value of version {VERSION}")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        return AESGCM(_key(secret, purpose)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise SealError("the value does not open with this secret key") from exc
