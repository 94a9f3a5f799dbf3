"""Signing keys are parsed once per process (core/oidc/keys.py KeyCache), keyed by the keypair and its PEM: a
rotated key signs from the next token on, and the JWKS publishes it."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.oidc import keys

pytestmark = pytest.mark.django_db


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_the_key_object_is_reused_until_the_key_changes():
    pair = keys.default_signing_key("rsa")
    first = keys.load_private_key(pair)
    assert keys.load_private_key(type(pair).objects.get(pk=pair.pk)) is first  # another instance, same key
    pair.key_data = _pem()
    pair.save()
    rotated = keys.load_private_key(type(pair).objects.get(pk=pair.pk))
    assert rotated is not first
    assert rotated.private_numbers() != first.private_numbers()


def test_a_rotated_key_signs_the_next_token_and_is_published(make_provider):
    prov = make_provider(signing="rsa")
    before = keys.signing_material(prov)
    prov.signing_key.key_data = _pem()
    prov.signing_key.save()
    prov.refresh_from_db()
    after = keys.signing_material(prov)
    assert after.kid != before.kid
    token = jwt.encode({"sub": "x"}, after.key, algorithm=after.alg, headers={"kid": after.kid})
    published = keys.jwks(prov)["keys"]
    assert [k["kid"] for k in published] == [after.kid]
    public = jwt.PyJWK(published[0]).key
    assert jwt.decode(token, public, algorithms=["RS256"])["sub"] == "x"
