"""WebAuthn registration and login with a software authenticator (P-256, "none" attestation).

The authenticator is hand-written here (about 30 lines) because no test-authenticator package is
installed; the verification under test is the real ``webauthn`` package in the stages.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from core.flows import models as fm
from core.flows.models import WebAuthnDevice
from tests.flows.conftest import login

pytestmark = pytest.mark.django_db
ORIGIN = "http://testserver"
RP_ID = "testserver"


class SoftAuthenticator:
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.count = 0

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": ORIGIN, "crossOrigin": False}).encode()

    def _auth_data(self, flags: int, attested: bytes = b"") -> bytes:
        self.count += 1
        return hashlib.sha256(RP_ID.encode()).digest() + bytes([flags]) + struct.pack(">I", self.count) + attested

    def register(self, options: dict) -> dict:
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + cose
        auth_data = self._auth_data(0x45, attested)  # UP | UV | AT
        client_data = self._client_data("webauthn.create", options["challenge"])
        cid = bytes_to_base64url(self.credential_id)
        return {"id": cid, "rawId": cid, "type": "public-key", "response": {
            "clientDataJSON": bytes_to_base64url(client_data),
            "attestationObject": bytes_to_base64url(cbor2.dumps({"fmt": "none", "attStmt": {},
                                                                 "authData": auth_data}))}}

    def assert_(self, options: dict) -> dict:
        auth_data = self._auth_data(0x05)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        cid = bytes_to_base64url(self.credential_id)
        return {"id": cid, "rawId": cid, "type": "public-key", "response": {
            "clientDataJSON": bytes_to_base64url(client_data), "authenticatorData": bytes_to_base64url(auth_data),
            "signature": bytes_to_base64url(signature)}}


def test_webauthn_register_then_login(flows, alice, executor):
    flows.authentication()
    flows.flow("setup-webauthn", "stage_configuration",
               [fm.AuthenticatorWebAuthnStage.objects.create(name="setup-webauthn")])
    client = Client()
    login(executor("default-authentication-flow", client=client), "alice", "correct horse")
    key = SoftAuthenticator()
    setup = executor("setup-webauthn", client=client)
    options = setup.get()["registration"]
    done = setup.post(component="ak-stage-authenticator-webauthn", response=key.register(options))
    assert done["component"] == "xak-flow-redirect", done
    device = WebAuthnDevice.objects.get(user=alice)
    assert base64url_to_bytes(device.credential_id) == key.credential_id

    ex = executor("default-authentication-flow")
    mfa = login(ex, "alice", "correct horse")
    webauthn_challenge = next(c for c in mfa["device_challenges"] if c["device_class"] == "webauthn")
    assertion = key.assert_(webauthn_challenge["challenge"])
    done = ex.post(component="ak-stage-authenticator-validate", webauthn=assertion)
    assert done["component"] == "xak-flow-redirect", done
    device.refresh_from_db()
    assert device.sign_count == key.count

    # a replayed assertion (same challenge, same counter) is refused
    ex2 = executor("default-authentication-flow")
    login(ex2, "alice", "correct horse")
    replay = ex2.post(component="ak-stage-authenticator-validate", webauthn=assertion)
    assert replay["component"] == "ak-stage-authenticator-validate" and replay["response_errors"]
