"""THREATS 11 (OIDC) and 8 (cross-application tokens) performed against the provider; each must
fail closed. authentik CVE-2023-48228 (redirect regex), CVE-2024-23647 (PKCE downgrade),
CVE-2024-52287 (scopes), CVE-2025-53942 (inactive users), CVE-2024-47077 (cross-provider tokens)."""

from __future__ import annotations

from urllib.parse import urlencode

import jwt
import pytest
from django.test import Client

from core.accounts.models import AuthenticatedSession, Token, TokenIntents, UserTypes
from core.oidc.models import AccessToken, RefreshToken
from tests.oidc.conftest import REDIRECT, login
from tests.oidc.helpers import authorize_url, code_from, exchange, get_code, introspect, token_request

pytestmark = pytest.mark.django_db


# --- redirect URIs: exact match unless regex was chosen, and then anchored -------------------

@pytest.mark.parametrize("uri", [
    REDIRECT + "/",                                   # suffix
    REDIRECT + "x",
    REDIRECT + "?next=evil",
    REDIRECT[:-1],                                    # prefix
    "https://grafana.example.com/login/",
    REDIRECT.upper(),                                 # case
    "https://GRAFANA.example.com/login/generic_oauth",
    "https://evil@grafana.example.com/login/generic_oauth",   # userinfo
    "https://grafana.example.com@evil.com/login/generic_oauth",
    "https://grafana.example.com.evil.com/login/generic_oauth",
    "http://grafana.example.com/login/generic_oauth",         # scheme
    "https://grafana.example.com:443/login/generic_oauth",
    "https://grafana.example.com/login/generic_oauth#frag",
    "https://grafana.example.com/login/%67eneric_oauth",
    "https://grafana.example.com/login/generic_oauth\t",
    "//grafana.example.com/login/generic_oauth",
    "https://evil.com/login/generic_oauth",
])
def test_redirect_uri_variants_refused(make_provider, browser, uri):
    client, _ = browser
    provider = make_provider()
    url, _ = authorize_url(provider, redirect_uri=uri)
    response = client.get(url)
    assert response.status_code == 400, (uri, response.status_code, response.get("Location"))
    assert "Location" not in response  # never sent to an unverified URI (RFC 6749 §4.1.2.1)


def test_strict_entry_with_regex_characters_is_not_a_regex(make_provider, browser):
    client, _ = browser
    provider = make_provider(redirect_uris=[{"matching_mode": "strict", "url": "https://app.example.com/.*"}])
    response = client.get(authorize_url(provider, redirect_uri="https://app.example.com/anything")[0])
    assert response.status_code == 400
    assert code_from(client.get(authorize_url(provider, redirect_uri="https://app.example.com/.*")[0]))


def test_regex_only_when_opted_in_and_anchored(make_provider, browser):
    client, _ = browser
    provider = make_provider(redirect_uris=[
        {"matching_mode": "regex", "url": r"https://[a-z]+\.example\.com/cb"}])
    assert code_from(client.get(authorize_url(provider, redirect_uri="https://app.example.com/cb")[0]))
    for uri in ("https://app.example.com/cb.evil.com", "https://evil.com/?https://app.example.com/cb",
                "https://app.example.com/cb/../x", "xhttps://app.example.com/cb"):
        assert client.get(authorize_url(provider, redirect_uri=uri)[0]).status_code == 400, uri


def test_token_redirect_uri_must_equal_authorize(make_provider, browser):
    client, _ = browser
    provider = make_provider(redirect_uris=[{"matching_mode": "strict", "url": REDIRECT},
                                            {"matching_mode": "strict", "url": REDIRECT + "2"}])
    code, verifier = get_code(client, provider)
    response = exchange(Client(), provider, code, verifier, redirect_uri=REDIRECT + "2")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# --- PKCE: S256 only, no downgrade, public clients must use it --------------------------------

def test_code_with_challenge_needs_verifier(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider)
    response = exchange(Client(), provider, code, None)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_code_with_challenge_refuses_wrong_or_plain_verifier(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    url, verifier = authorize_url(provider)
    challenge = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["code_challenge"]
    code = code_from(client.get(url))
    response = exchange(Client(), provider, code, challenge)  # "plain": the challenge as the verifier
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    code = get_code(client, provider)[0]
    response = exchange(Client(), provider, code, "w" * 50)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("method", ["plain", None, "S512"])
def test_plain_or_missing_method_refused_at_authorize(make_provider, browser, method):
    client, _ = browser
    provider = make_provider()
    url, _ = authorize_url(provider, code_challenge_method=method)
    if method is None:
        url = url.replace("&code_challenge_method=S256", "")
    response = client.get(url)
    assert response.status_code == 302 and "error=invalid_request" in response["Location"]
    assert "code=" not in response["Location"]


def test_public_client_must_use_pkce(make_provider, browser):
    client, _ = browser
    provider = make_provider(client_type="public")
    response = client.get(authorize_url(provider, pkce=False)[0])
    assert "error=invalid_request" in response["Location"] and "code=" not in response["Location"]
    code, verifier = get_code(client, provider)
    ok = exchange(Client(), provider, code, verifier, secret="")
    assert ok.status_code == 200, ok.content


def test_verifier_without_challenge_refused(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, _ = get_code(client, provider, pkce=False)
    response = exchange(Client(), provider, code, "v" * 50)
    assert response.status_code == 400


# --- scopes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scope", ["openid admin", "openid ak_proxy", "openid offline_access groups"])
def test_unknown_scope_dropped_at_authorize_and_never_granted(make_provider, browser, scope):
    """Unmapped scopes are dropped as authentik does (RFC 6749 §3.3; tests/oidc/test_scope_narrowing.py),
    and what was dropped grants nothing: no claim, no refresh token."""
    client, _ = browser
    provider = make_provider(scopes=("openid", "profile", "email"), include_claims_in_id_token=True)
    code, verifier = get_code(client, provider, scope=scope)
    body = exchange(Client(), provider, code, verifier).json()
    assert body["scope"] == "openid" and "refresh_token" not in body
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert not {"ak_proxy", "admin", "groups", "email", "name"} & set(claims)


def test_refresh_cannot_widen_scope(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider, scope="openid offline_access")
    token = exchange(Client(), provider, code, verifier).json()
    response = token_request(Client(), provider, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"],
                                                  "scope": "openid offline_access email"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_no_refresh_token_without_offline_access(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider, scope="openid email")
    token = exchange(Client(), provider, code, verifier).json()
    assert "refresh_token" not in token and not RefreshToken.objects.exists()


def test_client_credentials_scope_validated(make_provider, make_user):
    provider = make_provider(scopes=("openid", "profile"))
    response = token_request(Client(), provider, {"grant_type": "client_credentials", "scope": "openid email"})
    assert response.status_code == 200 and response.json()["scope"] == "openid"
    assert "email" not in jwt.decode(response.json()["id_token"], options={"verify_signature": False})


# --- codes are single-use; replay revokes -----------------------------------------------------

def test_code_reuse_refused_and_revokes(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider, scope="openid offline_access")
    first = exchange(Client(), provider, code, verifier)
    assert first.status_code == 200
    token = first.json()
    assert introspect(Client(), provider, token["access_token"]).json()["active"] is True
    replay = exchange(Client(), provider, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert introspect(Client(), provider, token["access_token"]).json() == {"active": False}
    assert introspect(Client(), provider, token["refresh_token"]).json() == {"active": False}
    refresh = token_request(Client(), provider, {"grant_type": "refresh_token",
                                                 "refresh_token": token["refresh_token"]})
    assert refresh.status_code == 400


def test_code_bound_to_client(make_provider, browser):
    client, _ = browser
    a, b = make_provider("app-a"), make_provider("app-b")
    code, verifier = get_code(client, a)
    response = exchange(Client(), b, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_401(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider)
    response = exchange(Client(), provider, code, verifier, basic=True, secret="wrong")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert exchange(Client(), provider, code, verifier, basic=True).status_code == 200


# --- who may authorize ------------------------------------------------------------------------

def test_inactive_user_cannot_authorize(make_provider, make_user):
    provider = make_provider()
    user = make_user("bob")
    client, _ = login(user)
    user.is_active = False
    user.save()
    response = client.get(authorize_url(provider)[0])
    assert response.status_code != 302 or "code=" not in response.get("Location", "")


@pytest.mark.parametrize("kind", [UserTypes.SERVICE_ACCOUNT, UserTypes.INTERNAL_SERVICE_ACCOUNT])
def test_service_account_cannot_authorize(make_provider, make_user, kind):
    provider = make_provider()
    client, _ = login(make_user("svc", type=kind))
    response = client.get(authorize_url(provider)[0])
    assert response.status_code == 403 and b"Grafana" in response.content
    assert "Location" not in response


def test_denied_by_bindings_shows_access_denied(make_provider, make_user):
    from core.accounts.models import Group
    from core.policies.models import PolicyBinding

    provider = make_provider()
    admins = Group.objects.create(name="Grafana Admins")
    PolicyBinding.objects.create(target=provider.application, group=admins, order=0)
    client, _ = login(make_user("eve"))
    response = client.get(authorize_url(provider)[0])
    assert response.status_code == 403 and b"Grafana" in response.content and "Location" not in response
    client, _ = login(make_user("root", groups=("Grafana Admins",)))
    assert code_from(client.get(authorize_url(provider)[0]))


def test_deactivating_user_or_ending_session_deactivates_tokens(make_provider, make_user):
    provider = make_provider()
    user = make_user("carol")
    client, session = login(user)
    code, verifier = get_code(client, provider, scope="openid offline_access")
    token = exchange(Client(), provider, code, verifier).json()
    user.is_active = False
    user.save()
    assert introspect(Client(), provider, token["access_token"]).json() == {"active": False}
    assert Client().get("/application/o/userinfo/", headers={
        "Authorization": f"Bearer {token['access_token']}"}).status_code == 401
    refresh = token_request(Client(), provider, {"grant_type": "refresh_token",
                                                 "refresh_token": token["refresh_token"]})
    assert refresh.status_code == 400
    user.is_active = True
    user.save()
    assert introspect(Client(), provider, token["access_token"]).json()["active"] is True
    AuthenticatedSession.objects.filter(pk=session.pk).delete()
    assert introspect(Client(), provider, token["access_token"]).json() == {"active": False}
    assert not AccessToken.objects.exists()


# --- THREATS 8: tokens are bound to their provider --------------------------------------------

def test_cross_client_introspection_is_inactive(make_provider, browser):
    client, _ = browser
    a, b = make_provider("app-a"), make_provider("app-b")
    code, verifier = get_code(client, a, scope="openid offline_access")
    token = exchange(Client(), a, code, verifier).json()
    assert introspect(Client(), a, token["access_token"]).json()["active"] is True
    assert introspect(Client(), b, token["access_token"]).json() == {"active": False}
    assert introspect(Client(), b, token["refresh_token"]).json() == {"active": False}
    refresh = token_request(Client(), b, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert refresh.status_code == 400
    revoke = Client().post("/application/o/revoke/", data=urlencode({
        "client_id": b.client_id, "client_secret": b.client_secret, "token": token["access_token"]}),
        content_type="application/x-www-form-urlencoded")
    assert revoke.status_code == 400
    assert introspect(Client(), a, token["access_token"]).json()["active"] is True


def test_introspection_needs_client_authentication(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider)
    token = exchange(Client(), provider, code, verifier).json()
    for data in ({"token": token["access_token"]},
                 {"client_id": provider.client_id, "token": token["access_token"]},
                 {"client_id": provider.client_id, "client_secret": "nope", "token": token["access_token"]}):
        response = Client().post("/application/o/introspect/", data=urlencode(data),
                                 content_type="application/x-www-form-urlencoded")
        assert response.status_code in (400, 401) and response.json().get("active") is not True


def test_public_client_cannot_introspect(make_provider, browser):
    client, _ = browser
    public = make_provider("spa", client_type="public")
    code, verifier = get_code(client, public)
    token = exchange(Client(), public, code, verifier, secret="").json()
    response = Client().post("/application/o/introspect/", data=urlencode({
        "client_id": public.client_id, "token": token["access_token"]}),
        content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 401) and response.json().get("active") is not True


def test_forged_token_signed_with_other_key_is_unknown(make_provider, browser):
    import jwt

    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider)
    claims = jwt.decode(exchange(Client(), provider, code, verifier).json()["access_token"],
                        options={"verify_signature": False})
    forged = jwt.encode({**claims, "sub": "someone-else"}, provider.client_secret, algorithm="HS256")
    assert introspect(Client(), provider, forged).json() == {"active": False}
    assert Client().get("/application/o/userinfo/", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_app_password_of_other_user_refused(make_provider, make_user):
    provider = make_provider()
    bob, mallory = make_user("bob"), make_user("mallory")
    token = Token(identifier="bob-app", intent=TokenIntents.INTENT_APP_PASSWORD, user=bob, expiring=False)
    key = token.set_key()
    token.save()
    response = token_request(Client(), provider, {"grant_type": "client_credentials", "username": "mallory",
                                                  "password": key, "scope": "openid"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert mallory.pk
