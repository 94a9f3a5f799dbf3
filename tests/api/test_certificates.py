"""``/api/v3/crypto/certificatekeypairs/``: superusers only, keys shown only through view_private_key, managed pairs
kept, a key that does not match its certificate refused."""

import pytest

from core.crypto.api import generate
from core.crypto.models import CertificateKeyPair
from core.oidc.keys import default_signing_key

pytestmark = pytest.mark.django_db
URL = "/api/v3/crypto/certificatekeypairs/"


def pair(name: str, alg: str = "ecdsa") -> tuple[str, str]:
    return generate({"common_name": name, "validity_days": 1, "alg": alg})


def test_superusers_only_and_no_pem_in_answers(admin, alice_api):
    cert, key = pair("one")
    created = admin.post(URL, {"name": "one", "certificate_data": cert, "key_data": key}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert "key_data" not in body and "certificate_data" not in body and body["private_key_available"] is True
    assert alice_api.get(URL).status_code == 403
    assert alice_api.get(f"{URL}{body['pk']}/view_private_key/").status_code == 403
    shown = admin.get(f"{URL}{body['pk']}/view_private_key/")
    assert shown.json()["data"] == key
    download = admin.get(f"{URL}{body['pk']}/view_certificate/?download")
    assert download["Content-Disposition"].startswith("attachment") and download.content.decode() == cert


def test_key_must_match_and_managed_pairs_stay(admin):
    cert, _key = pair("two")
    _other_cert, other_key = pair("three", "rsa")
    refused = admin.post(URL, {"name": "two", "certificate_data": cert, "key_data": other_key}, format="json")
    assert refused.status_code == 400 and "does not belong" in refused.json()["key_data"][0]
    managed = default_signing_key("ec")
    assert admin.delete(f"{URL}{managed.pk}/").status_code == 400
    assert admin.patch(f"{URL}{managed.pk}/", {"name": "renamed"}, format="json").status_code == 400
    assert CertificateKeyPair.objects.filter(pk=managed.pk, name=managed.name).exists()
    listed = admin.get(URL, {"key_type": "ec", "has_key": "true"}).json()["results"]
    assert [p["pk"] for p in listed] == [str(managed.pk)]
