"""Signing keys for ID and access tokens (RFC 7515/7518 algorithms, RFC 7517 JWKS, RFC 7638 kid).

A provider with a ``signing_key`` signs with it: RS256 for an RSA key, ES256 for an EC P-256 key.
Without one it signs HS256 with its client_secret, as authentik does (reference §2.2: proxy
providers rely on this), and its JWKS lists no key.

``default_signing_key(kind)`` makes, on first use, one self-signed RSA 2048 or EC P-256 keypair as
a managed CertificateKeyPair, for administrators who want an asymmetric key without bringing one. The RSA one
is authentik's default certificate, "authentik Self-signed Certificate" (authentik makes it at startup; here
the admin's OAuth2 provider form makes it on first need, so startup stays cheap, and preselects it for a new
provider as authentik's form does). A pair of that name that is not managed (brought from authentik) is used
as it is.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.db import IntegrityError, transaction
from joserfc.jwk import ECKey, RSAKey

from core.crypto.models import CertificateKeyPair

LOGGER = logging.getLogger("gatehouse.oidc.keys")

MANAGED = {
    "rsa": "goauthentik.io/crypto/default-rsa",
    "ec": "goauthentik.io/crypto/default-ec",
}
NAMES = {
    "rsa": "authentik Self-signed Certificate",
    "ec": "authentik Self-signed Signing Key (ECDSA P-256)",
}
CERT_DAYS = 3650


class SigningKeyError(ValueError):
    """A provider's signing key cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class SigningMaterial:
    """What pyjwt needs to sign: the key object (or the HMAC secret), the algorithm and the kid."""

    key: object = field(repr=False)
    alg: str
    kid: str | None


def _new_private_key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"signing key kind {kind!r} is unknown: use 'rsa' or 'ec'")


def self_signed(private_key, common_name: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(private_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .sign(private_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def default_signing_key(kind: str = "rsa") -> CertificateKeyPair:
    """The managed default keypair of ``kind`` ("rsa" or "ec"), created on first use."""
    managed = MANAGED.get(kind)
    if managed is None:
        raise ValueError(f"signing key kind {kind!r} is unknown: use 'rsa' or 'ec'")
    existing = _existing(kind)
    if existing is not None:
        return existing
    private_key = _new_private_key(kind)
    key_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    try:
        with transaction.atomic():
            return CertificateKeyPair.objects.create(
                name=NAMES[kind], managed=managed, key_data=key_pem,
                certificate_data=self_signed(private_key, NAMES[kind]))
    except IntegrityError:  # another worker (replica) created it at the same time: use theirs
        existing = _existing(kind)
        if existing is None:
            raise
        return existing


def _existing(kind: str) -> CertificateKeyPair | None:
    return (CertificateKeyPair.objects.filter(managed=MANAGED[kind]).first()
            or CertificateKeyPair.objects.filter(name=NAMES[kind]).first())


class KeyCache:
    """Private keys parsed once per process (reading a PEM RSA key checks it: milliseconds per token otherwise).

    Keyed by the keypair's pk and a digest of its PEM, so a rotated key (new key_data) is parsed afresh and the
    old entry is never used again; bounded by ``limit`` entries (cleared when full: configuration, not users).
    A dict read or write is atomic, so threads share it without a lock."""

    def __init__(self, limit: int = 64):
        self.limit = limit
        self.entries: dict = {}

    @staticmethod
    def key_of(pair: CertificateKeyPair) -> tuple:
        return pair.pk, hashlib.sha256(pair.key_data.encode()).digest()

    def get(self, pair: CertificateKeyPair):
        return self.entries.get(self.key_of(pair))

    def put(self, pair: CertificateKeyPair, value) -> None:
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[self.key_of(pair)] = value


KEYS = KeyCache()


def load_private_key(pair: CertificateKeyPair):
    """The pair's private key object (parsed once per process and key: KEYS); SigningKeyError names the fix."""
    if pair.key_data:
        cached = KEYS.get(pair)
        if cached is not None:
            return cached[0]
    key = _parse_private_key(pair)
    KEYS.put(pair, (key, _jwk(key).thumbprint()))
    return key


def _kid(pair: CertificateKeyPair, private_key) -> str:
    cached = KEYS.get(pair)
    return cached[1] if cached is not None else _jwk(private_key).thumbprint()


def _parse_private_key(pair: CertificateKeyPair):
    if not pair.key_data:
        raise SigningKeyError(f"certificate {pair.name!r} has no private key: upload its key, or pick another "
                        "signing key for the provider")
    try:
        key = serialization.load_pem_private_key(pair.key_data.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"the private key of {pair.name!r} cannot be read ({exc}): upload an unencrypted "
                        "PEM RSA or EC P-256 key") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SigningKeyError(f"the key of {pair.name!r} is {type(key).__name__}: only RSA and EC P-256 keys can sign "
                    "tokens (RS256 / ES256)")


def algorithm(provider) -> str:
    """RS256, ES256, or HS256 when the provider has no signing key."""
    if provider.signing_key_id is None:
        return "HS256"
    key = load_private_key(provider.signing_key)
    return "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


def _jwk(private_key):
    pem = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return (RSAKey if isinstance(private_key, rsa.RSAPrivateKey) else ECKey).import_key(pem)


def signing_material(provider) -> SigningMaterial:
    if provider.signing_key_id is None:
        if not provider.client_secret:
            raise SigningKeyError(f"provider {provider.name!r} has neither a signing key nor a client secret: set "
                            "one of them so tokens can be signed")
        return SigningMaterial(provider.client_secret, "HS256", None)
    private_key = load_private_key(provider.signing_key)
    alg = "RS256" if isinstance(private_key, rsa.RSAPrivateKey) else "ES256"
    return SigningMaterial(private_key, alg, _kid(provider.signing_key, private_key))


def jwks(provider) -> dict:
    """RFC 7517 §5 key set with the provider's public signing key (none for HS256)."""
    if provider.signing_key_id is None:
        return {"keys": []}
    private_key = load_private_key(provider.signing_key)
    key = _jwk(private_key)
    entry = dict(key.as_dict(private=False))
    entry.update({"kid": key.thumbprint(), "use": "sig",
                  "alg": "RS256" if isinstance(private_key, rsa.RSAPrivateKey) else "ES256"})
    return {"keys": [entry]}
