"""Requested scopes the provider does not map are dropped, not refused (RFC 6749 §3.3: the server may
grant fewer scopes than asked and says which in the token response's ``scope``), as authentik does
(``OAuthAuthorizationParams.check_scope`` and ``TokenRequest.check_scopes``: "setting to overlap").
An RP asking for ``offline_access`` or ``groups`` against a provider without those mappings works.

THREATS 11 ("scopes validated for every grant") still holds: a dropped scope grants nothing -- no
claim of an unmapped scope, no refresh token without a mapped ``offline_access`` -- and a refresh
cannot widen the grant beyond what was granted (RFC 6749 §6; test_threats.py::test_refresh_cannot_widen_scope)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import jwt
import pytest
from django.test import Client

from core.oidc.models import RefreshToken, ScopeMapping
from tests.oidc.helpers import authorize_url, code_from, exchange, get_code, token_request

pytestmark = pytest.mark.django_db
LOGGER = "gatehouse.oidc"


def _dropped_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and "not mapped" in r.getMessage()]


def test_unmapped_scopes_are_dropped_at_authorize(make_provider, browser, caplog):
    client, _ = browser
    provider = make_provider(scopes=("openid", "profile", "email"))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        code, verifier = get_code(client, provider, scope="openid email profile offline_access groups")
    lines = _dropped_lines(caplog)
    assert len(lines) == 1 and "offline_access groups" in lines[0] and provider.name in lines[0], lines
    body = exchange(Client(), provider, code, verifier).json()
    assert body["scope"] == "openid email profile"
    assert "refresh_token" not in body and not RefreshToken.objects.exists()  # offline_access is not mapped
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "openid email profile"
    info = Client().get("/application/o/userinfo/", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.json()["email"] == "alice@example.com"


def test_a_dropped_scope_never_grants_its_claims(make_provider, browser, blueprints):
    """``groups`` is a claim of the profile mapping; ``ak_proxy`` has its own mapping. Asking for the
    ak_proxy scope at a provider that does not map it gives no ak_proxy claim anywhere."""
    client, _ = browser
    provider = make_provider(scopes=("openid", "email"), include_claims_in_id_token=True)
    code, verifier = get_code(client, provider, scope="openid email ak_proxy profile")
    body = exchange(Client(), provider, code, verifier).json()
    assert body["scope"] == "openid email"
    for token in (body["access_token"], body["id_token"]):
        claims = jwt.decode(token, options={"verify_signature": False})
        assert "ak_proxy" not in claims and "groups" not in claims and "name" not in claims
    info = Client().get("/application/o/userinfo/", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert set(info.json()) <= {"sub", "sid", "email", "email_verified"}


def test_mapped_offline_access_gives_a_refresh_token(make_provider, browser):
    client, _ = browser
    provider = make_provider()  # openid profile email offline_access
    code, verifier = get_code(client, provider, scope="openid offline_access groups")
    body = exchange(Client(), provider, code, verifier).json()
    assert body["scope"] == "openid offline_access" and body["refresh_token"]


def test_no_scope_asks_for_every_configured_scope(make_provider, browser):
    """authentik: "No scopes requested, defaulting to all configured scopes"."""
    client, _ = browser
    provider = make_provider(scopes=("openid", "email"))
    url, verifier = authorize_url(provider, scope=None)
    body = exchange(Client(), provider, code_from(client.get(url)), verifier).json()
    assert sorted(body["scope"].split()) == ["email", "openid"]


def test_every_scope_unmapped_still_authorizes_with_none(make_provider, browser):
    client, _ = browser
    provider = make_provider(scopes=("openid",))
    code, verifier = get_code(client, provider, scope="groups offline_access")
    body = exchange(Client(), provider, code, verifier).json()
    assert body["scope"] == "" and "refresh_token" not in body


def test_refresh_narrows_to_the_mapped_overlap(make_provider, browser, caplog):
    """An RP that resends its original scope on refresh (``... groups``) is not refused because the
    provider never mapped ``groups``."""
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider, scope="openid offline_access groups")
    first = exchange(Client(), provider, code, verifier).json()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        again = token_request(Client(), provider, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                                   "scope": "openid offline_access groups"})
    assert again.status_code == 200, again.content
    assert again.json()["scope"] == "openid offline_access" and again.json()["refresh_token"]
    assert any("groups" in line for line in _dropped_lines(caplog))


def test_refresh_after_the_mapping_was_removed_drops_it(make_provider, browser, blueprints):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider, scope="openid email offline_access")
    first = exchange(Client(), provider, code, verifier).json()
    provider.property_mappings.remove(blueprints["email"])
    again = token_request(Client(), provider, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 200, again.content
    assert again.json()["scope"] == "openid offline_access"
    assert "email" not in jwt.decode(again.json()["id_token"], options={"verify_signature": False})


def test_client_credentials_narrows(make_provider, caplog):
    provider = make_provider(scopes=("openid", "profile"))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = token_request(Client(), provider, {"grant_type": "client_credentials",
                                                      "scope": "openid email groups"})
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "openid" and "refresh_token" not in response.json()
    assert "email" not in jwt.decode(response.json()["id_token"], options={"verify_signature": False})
    assert any("email groups" in line for line in _dropped_lines(caplog))


def test_device_code_narrows(make_provider):
    provider = make_provider(scopes=("openid", "email"))
    start = Client().post("/application/o/device/", data=urlencode({
        "client_id": provider.client_id, "client_secret": provider.client_secret,
        "scope": "openid email offline_access groups"}), content_type="application/x-www-form-urlencoded")
    assert start.status_code == 200, start.content
    from core.oidc.models import DeviceToken

    assert DeviceToken.objects.get().scope == "openid email"


def test_scope_mapping_removed_between_authorize_and_token_grants_nothing(make_provider, browser, blueprints):
    """The claims come from the mappings at issue time; a scope granted at /authorize whose mapping is
    gone by the exchange yields no claims."""
    client, _ = browser
    provider = make_provider(include_claims_in_id_token=True)
    code, verifier = get_code(client, provider, scope="openid email")
    provider.property_mappings.remove(ScopeMapping.objects.get(scope_name="email", managed__isnull=False))
    body = exchange(Client(), provider, code, verifier).json()
    assert "email" not in jwt.decode(body["id_token"], options={"verify_signature": False})
