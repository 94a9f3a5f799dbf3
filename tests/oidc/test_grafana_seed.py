"""Seed 001 "Grafana OAuth Integration": Grafana's generic OAuth settings work unchanged against the
core. Grafana logs in with the code flow (client secret in the body), calls API_URL with the access
token, and evaluates ROLE_ATTRIBUTE_PATH (JMESPath) against the userinfo answer."""

from __future__ import annotations

from urllib.parse import urlsplit

import jmespath
import pytest
from django.test import Client

from tests.oidc.conftest import login
from tests.oidc.helpers import authorize_url, code_from, exchange

pytestmark = pytest.mark.django_db

# Verbatim from the seed's .env block (host replaced by the test server's).
ENV = {
    "GF_AUTH_GENERIC_OAUTH_SCOPES": "openid profile email",
    "GF_AUTH_GENERIC_OAUTH_AUTH_URL": "https://authentik.antoineglacet.com/application/o/authorize/",
    "GF_AUTH_GENERIC_OAUTH_TOKEN_URL": "https://authentik.antoineglacet.com/application/o/token/",
    "GF_AUTH_GENERIC_OAUTH_API_URL": "https://authentik.antoineglacet.com/application/o/userinfo/",
    "GF_AUTH_SIGNOUT_REDIRECT_URL": "https://authentik.antoineglacet.com/application/o/grafana/end-session/",
    "GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH": "contains(groups[*], 'Grafana Admins') && 'Admin' || "
                                                 "contains(groups[*], 'Grafana Editors') && 'Editor' || 'Viewer'",
}
REDIRECT = "https://grafana.antoineglacet.com/login/generic_oauth"


def path(name: str) -> str:
    return urlsplit(ENV[name]).path


@pytest.mark.parametrize("groups,role", [
    (("Grafana Admins",), "Admin"),
    (("Grafana Editors",), "Editor"),
    (("Grafana Admins", "Grafana Editors"), "Admin"),
    ((), "Viewer"),
    (("Other",), "Viewer"),
])
def test_grafana_login_and_role_mapping(make_provider, make_user, groups, role):
    provider = make_provider("grafana", signing="rsa", redirect_uris=[{"matching_mode": "strict", "url": REDIRECT}],
                             scopes=("openid", "profile", "email"))
    user = make_user("gina", groups=groups)
    browser, _ = login(user)
    url, verifier = authorize_url(provider, redirect_uri=REDIRECT, scope=ENV["GF_AUTH_GENERIC_OAUTH_SCOPES"])
    assert url.startswith(path("GF_AUTH_GENERIC_OAUTH_AUTH_URL"))
    code = code_from(browser.get(url))
    token = exchange(Client(), provider, code, verifier, redirect_uri=REDIRECT)
    assert urlsplit(token.request["PATH_INFO"]).path == path("GF_AUTH_GENERIC_OAUTH_TOKEN_URL")
    assert token.status_code == 200, token.content
    info = Client().get(path("GF_AUTH_GENERIC_OAUTH_API_URL"),
                        headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert info.status_code == 200
    claims = info.json()
    assert claims["email"] == "gina@example.com" and claims["preferred_username"] == "gina"
    assert jmespath.search(ENV["GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH"], claims) == role


def test_nested_groups_count(make_provider, make_user):
    from core.accounts.models import Group

    provider = make_provider("grafana", redirect_uris=[{"matching_mode": "strict", "url": REDIRECT}],
                             scopes=("openid", "profile", "email"))
    admins = Group.objects.create(name="Grafana Admins")
    Group.objects.create(name="SRE", parent=admins)
    user = make_user("nina", groups=("SRE",))
    browser, _ = login(user)
    url, verifier = authorize_url(provider, redirect_uri=REDIRECT)
    token = exchange(Client(), provider, code_from(browser.get(url)), verifier, redirect_uri=REDIRECT).json()
    claims = Client().get("/application/o/userinfo/", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert sorted(claims["groups"]) == ["Grafana Admins", "SRE"]
    assert jmespath.search(ENV["GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH"], claims) == "Admin"


def test_signout_url_ends_the_session(make_provider, make_user):
    from core.accounts.models import AuthenticatedSession

    make_provider("grafana", redirect_uris=[{"matching_mode": "strict", "url": REDIRECT}])
    browser, session = login(make_user("gina"))
    # Grafana sends no id_token_hint: the core asks first (tests/oidc/test_logout_confirmation.py)
    response = browser.get(path("GF_AUTH_SIGNOUT_REDIRECT_URL"))
    assert response.status_code == 200 and b"Sign out?" in response.content
    assert AuthenticatedSession.objects.filter(pk=session.pk).exists()
    response = browser.post("/application/o/grafana/end-session/confirm/", {})
    assert response.status_code == 200 and b"signed out" in response.content
    assert not AuthenticatedSession.objects.filter(pk=session.pk).exists()


def test_seed_curl_client_credentials(make_provider):
    """The seed's "Test token endpoint" curl: client_id and client_secret only."""
    provider = make_provider("grafana")
    response = Client().post("/application/o/token/", data={
        "grant_type": "client_credentials", "client_id": provider.client_id, "client_secret": provider.client_secret})
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]
