"""The whole OAuth2/OIDC journey with a real client library (authlib's requests OAuth2Session)
driving the core in-process: discovery -> authorize (+PKCE) -> token -> userinfo -> refresh ->
introspection -> revocation -> end-session; ID tokens verified with pyjwt against the JWKS (RS256,
ES256) or the client secret (HS256)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from authlib.integrations.requests_client import OAuth2Session

from core.accounts.models import AuthenticatedSession
from core.events.models import Event
from tests.oidc.conftest import BASE, REDIRECT
from tests.oidc.transport import mount

pytestmark = pytest.mark.django_db


def oauth_session(client, provider, **kwargs) -> OAuth2Session:
    session = OAuth2Session(provider.client_id, provider.client_secret, scope="openid profile email offline_access",
                            redirect_uri=REDIRECT, code_challenge_method="S256", **kwargs)
    return mount(session, client)


def authorize(browser_client, url: str) -> dict:
    """Follow the authorize URL with the logged-in browser; return the query the client receives."""
    response = browser_client.get(url.removeprefix(BASE))
    assert response.status_code == 302, response.content[:500]
    location = response["Location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def verify_id_token(oauth, provider, id_token: str, config: dict) -> dict:
    alg = config["id_token_signing_alg_values_supported"][0]
    if alg == "HS256":
        key = provider.client_secret
    else:
        jwks = oauth.get(config["jwks_uri"], withhold_token=True).json()
        header = jwt.get_unverified_header(id_token)
        entry = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        assert entry["alg"] == alg and entry["use"] == "sig"
        key = jwt.PyJWK.from_dict(entry).key
    return jwt.decode(id_token, key, algorithms=[alg], audience=provider.client_id, issuer=config["issuer"])


@pytest.mark.parametrize("signing,alg", [("rsa", "RS256"), ("ec", "ES256"), (None, "HS256")])
def test_full_journey(make_provider, browser, alice, signing, alg):
    client, login_session = browser
    provider = make_provider(signing=signing)
    oauth = oauth_session(client, provider)

    config = oauth.get(f"{BASE}/application/o/grafana/.well-known/openid-configuration", withhold_token=True).json()
    assert config["issuer"] == f"{BASE}/application/o/grafana/"
    assert config["id_token_signing_alg_values_supported"] == [alg]
    assert client.get("/application/o/grafana/")["Location"].endswith("/.well-known/openid-configuration")
    rfc8414 = oauth.get(f"{BASE}/.well-known/oauth-authorization-server/application/o/grafana/",
                        withhold_token=True).json()
    assert rfc8414["token_endpoint"] == config["token_endpoint"]

    verifier = "v" * 20 + "-verifier-" + "x" * 30
    url, state = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                nonce="n-0S6_WzA2Mj")
    answer = authorize(client, url)
    assert answer["state"] == state
    token = oauth.fetch_token(config["token_endpoint"], code=answer["code"], code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["refresh_token"] and token["expires_in"] > 0

    id_claims = verify_id_token(oauth, provider, token["id_token"], config)
    assert id_claims["sub"] == alice.uid and id_claims["aud"] == provider.client_id
    assert id_claims["nonce"] == "n-0S6_WzA2Mj"
    assert id_claims["sid"] == login_session.sid
    assert id_claims["preferred_username"] == "alice" and id_claims["email"] == "alice@example.com"
    assert id_claims["groups"] == ["Grafana Editors"]
    assert "at_hash" in id_claims and id_claims["acr"] == "goauthentik.io/providers/oauth2/default"
    access_claims = verify_id_token(oauth, provider, token["access_token"], config)
    assert access_claims["azp"] == provider.client_id and access_claims["scope"].split() == [
        "openid", "profile", "email", "offline_access"]
    assert access_claims["uid"] and access_claims["sid"] == login_session.sid

    info = oauth.get(config["userinfo_endpoint"]).json()
    assert info["sub"] == alice.uid and info["email"] == "alice@example.com" and info["name"] == "Alice Doe"
    assert info["groups"] == ["Grafana Editors"] and info["nickname"] == "alice"

    refreshed = oauth.refresh_token(config["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]  # rotation
    old = oauth.post(config["token_endpoint"], data={"grant_type": "refresh_token",
                                                     "refresh_token": token["refresh_token"]},
                     auth=(provider.client_id, provider.client_secret))
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"

    # The reuse above revoked the whole family (Security BCP §4.14.2): fetch a fresh pair.
    url, _ = oauth.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier)
    token = oauth.fetch_token(config["token_endpoint"], code=authorize(client, url)["code"], code_verifier=verifier)
    intro = oauth.post(config["introspection_endpoint"], data={"token": token["access_token"]},
                       auth=(provider.client_id, provider.client_secret)).json()
    assert intro["active"] is True and intro["client_id"] == provider.client_id
    assert intro["sub"] == alice.uid and intro["sid"] == login_session.sid and intro["scope"]
    assert intro["exp"] > 0

    assert oauth.revoke_token(config["revocation_endpoint"], token["access_token"]).status_code == 200
    intro = oauth.post(config["introspection_endpoint"], data={"token": token["access_token"]},
                       auth=(provider.client_id, provider.client_secret)).json()
    assert intro == {"active": False}
    assert oauth.get(config["userinfo_endpoint"],
                     headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 401

    end = client.get(f"/application/o/grafana/end-session/?id_token_hint={token['id_token']}"
                     f"&post_logout_redirect_uri={REDIRECT}&state=bye")
    assert end.status_code == 302 and end["Location"] == f"{REDIRECT}?state=bye"
    assert not AuthenticatedSession.objects.filter(pk=login_session.pk).exists()
    assert client.get(url.removeprefix(BASE))["Location"].startswith("/if/flow/default-authentication-flow/")
    intro = oauth.post(config["introspection_endpoint"], data={"token": token["refresh_token"]},
                       auth=(provider.client_id, provider.client_secret)).json()
    assert intro == {"active": False}  # the session's tokens went with it

    events = list(Event.objects.filter(action="authorize_application"))
    assert events
    for event in events:
        flat = str(event.context)
        assert token["access_token"] not in flat and provider.client_secret not in flat
