"""Grants and endpoints beyond the code flow: client_credentials (authentik's app-password and
generated-user forms), the proxy provider's HS256 tokens with ak_proxy claims, the device flow
(RFC 8628), consent through the explicit-consent flow, prompt/max_age, end-session, JWKS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.test import Client

from core.accounts.models import Token, TokenIntents, User, UserTypes
from core.events.models import Event
from core.flows.models import UserConsent
from core.providers.proxy.models import ProxyProvider
from tests.oidc.conftest import REDIRECT, login
from tests.oidc.helpers import authorize_url, code_from, exchange, get_code, introspect, token_request

pytestmark = pytest.mark.django_db


def app_password(user, identifier="app-pw", intent=TokenIntents.INTENT_APP_PASSWORD) -> str:
    token = Token(identifier=identifier, intent=intent, user=user, expiring=False)
    key = token.set_key()
    token.save()
    return key


def test_client_credentials_with_app_password(make_provider, make_user):
    provider = make_provider()
    user = make_user("dave", groups=("Grafana Editors",))
    key = app_password(user)
    response = token_request(Client(), provider, {"grant_type": "client_credentials", "username": "dave",
                                                  "password": key, "scope": "openid profile email"})
    assert response.status_code == 200, response.content
    body = response.json()
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["preferred_username"] == "dave" and "refresh_token" not in body
    assert introspect(Client(), provider, body["access_token"]).json()["active"] is True
    password = token_request(Client(), provider, {"grant_type": "password", "username": "dave", "password": key,
                                                  "scope": "openid"})
    assert password.status_code == 200
    logins = Event.objects.filter(action="login", user__username="dave", context__method="token")  # JSON lookups
    assert sorted(e.context["grant_type"] for e in logins) == ["client_credentials", "password"]  # as authentik


def test_client_credentials_api_token_only_for_service_accounts(make_provider, make_user):
    provider = make_provider()
    svc = make_user("robot", type=UserTypes.SERVICE_ACCOUNT)
    human = make_user("hank")
    ok = token_request(Client(), provider, {"grant_type": "client_credentials", "username": "robot",
                                            "password": app_password(svc, "robot-api", TokenIntents.INTENT_API)})
    assert ok.status_code == 200
    refused = token_request(Client(), provider, {"grant_type": "client_credentials", "username": "hank",
                                                 "password": app_password(human, "hank-api", TokenIntents.INTENT_API)})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_client_credentials_bindings_apply(make_provider, make_user):
    from core.accounts.models import Group
    from core.policies.models import PolicyBinding

    provider = make_provider()
    PolicyBinding.objects.create(target=provider.application, group=Group.objects.create(name="Allowed"), order=0)
    user = make_user("outsider")
    response = token_request(Client(), provider, {"grant_type": "client_credentials", "username": "outsider",
                                                  "password": app_password(user)})
    assert response.status_code == 403 and response.json()["error"] == "access_denied"


def test_client_credentials_generated_user_and_public_refused(make_provider):
    provider = make_provider()
    response = token_request(Client(), provider, {"grant_type": "client_credentials"}, basic=True)
    assert response.status_code == 200
    generated = User.objects.get(username=f"ak-{provider.name}-client_credentials")
    assert generated.type == UserTypes.SERVICE_ACCOUNT
    public = make_provider("spa", client_type="public")
    response = token_request(Client(), public, {"grant_type": "client_credentials"}, secret="")
    assert response.status_code in (400, 401)


def test_proxy_provider_hs256_and_ak_proxy(blueprints, make_user):
    from core.accounts.models import Application, Group

    provider = ProxyProvider.objects.create(name="whoami", external_host="https://whoami.example.com",
                                            mode="forward_single")
    provider.property_mappings.add(*[blueprints[s] for s in ("openid", "profile", "email", "entitlements",
                                                              "ak_proxy")])
    Application.objects.create(name="Whoami", slug="whoami", provider=provider)
    group = Group.objects.create(name="staff", attributes={"team": "ops"})
    user = make_user("olga", attributes={"desk": "7"})
    user.groups.add(group)
    browser, session = login(user)
    callback = "https://whoami.example.com/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"
    url, _ = authorize_url(provider, redirect_uri=callback, scope="openid profile email entitlements ak_proxy",
                           pkce=False)
    code = code_from(browser.get(url))
    body = exchange(Client(), provider, code, None, redirect_uri=callback).json()
    config = Client().get("/application/o/whoami/.well-known/openid-configuration").json()
    assert config["id_token_signing_alg_values_supported"] == ["HS256"]
    assert Client().get("/application/o/whoami/jwks/").json() == {"keys": []}
    claims = jwt.decode(body["access_token"], provider.client_secret, algorithms=["HS256"],
                        audience=provider.client_id, issuer=config["issuer"])
    assert claims["ak_proxy"] == {"user_attributes": {"team": "ops", "desk": "7"}, "is_superuser": False}
    assert claims["entitlements"] == [] and claims["sid"] == session.sid and claims["groups"] == ["staff"]
    intro = introspect(Client(), provider, body["access_token"]).json()
    assert intro["ak_proxy"]["user_attributes"]["team"] == "ops" and intro["client_id"] == provider.client_id


def test_device_flow(make_provider, make_user):
    provider = make_provider()
    start = Client().post("/application/o/device/", data=urlencode({
        "client_id": provider.client_id, "client_secret": provider.client_secret, "scope": "openid email"}),
        content_type="application/x-www-form-urlencoded")
    assert start.status_code == 200, start.content
    grant = start.json()
    assert grant["verification_uri"] == "http://testserver/device" and grant["interval"] == 5
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": grant["device_code"]}
    pending = token_request(Client(), provider, poll)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

    assert Client().get("/device").status_code == 302  # login first
    browser, session = login(make_user("dora"))
    page = browser.get(urlsplit(grant["verification_uri_complete"]).path + "?"
                       + urlsplit(grant["verification_uri_complete"]).query)
    assert page.status_code == 200 and grant["user_code"].encode() in page.content
    wrong = browser.post("/device", {"user_code": "BBBB-CCCC"})
    assert wrong.status_code == 400
    ok = browser.post("/device", {"user_code": grant["user_code"].lower()})
    assert ok.status_code == 200 and b"Grafana" in ok.content
    token = token_request(Client(), provider, poll)
    assert token.status_code == 200, token.content
    claims = jwt.decode(token.json()["id_token"], options={"verify_signature": False})
    assert claims["sid"] == session.sid and claims["email"] == "dora@example.com"
    again = token_request(Client(), provider, poll)
    assert again.status_code == 400


def test_device_code_bound_to_client(make_provider):
    a, b = make_provider("app-a"), make_provider("app-b")
    grant = Client().post("/application/o/device/", data=urlencode({
        "client_id": a.client_id, "client_secret": a.client_secret}),
        content_type="application/x-www-form-urlencoded").json()
    response = token_request(Client(), b, {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                           "device_code": grant["device_code"]})
    assert response.status_code in (400, 401)


def test_not_logged_in_goes_to_login_flow(make_provider):
    provider = make_provider()
    url, _ = authorize_url(provider)
    response = Client().get(url)
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == "/if/flow/default-authentication-flow/"
    assert parse_qs(target.query)["next"][0] == url
    none = Client().get(authorize_url(provider, prompt="none")[0])
    assert none["Location"].startswith(REDIRECT) and "error=login_required" in none["Location"]


def test_prompt_login_forces_a_new_login(make_provider, browser):
    """The way back keeps prompt=login with the signed time it was asked; the session stays until a
    new login replaces it (tests/oidc/test_logout_confirmation.py)."""
    client, session = browser
    provider = make_provider()
    response = client.get(authorize_url(provider, prompt="login")[0])
    target = urlsplit(response["Location"])
    assert target.path == "/if/flow/default-authentication-flow/"
    back = parse_qs(urlsplit(parse_qs(target.query)["next"][0]).query)
    assert back["prompt"] == ["login"] and back["ak_login_since"]


def test_max_age_asks_for_a_login_until_one_completed(make_provider, browser):
    client, session = browser
    provider = make_provider()
    response = client.get(authorize_url(provider, max_age="0")[0])
    nxt = parse_qs(urlsplit(response["Location"]).query)["next"][0]
    assert "max_age=0" in nxt and "ak_login_since" in nxt
    # a forged or missing time does not count as a completed login
    assert client.get(nxt.replace("ak_login_since=", "ak_login_since=x"))["Location"].startswith("/if/flow/")


def test_explicit_consent_runs_the_flow_and_cannot_be_skipped(make_provider, browser, alice):
    client, _ = browser
    provider = make_provider(flow="default-provider-authorization-explicit-consent")
    url, verifier = authorize_url(provider)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(
        "/if/flow/default-provider-authorization-explicit-consent/")
    # Replaying the authorize URL (or guessing the continue URL) does not skip the consent.
    forged = client.get(url + "&ak_authz_done=guess")
    assert forged["Location"].startswith("/if/flow/")
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"ak-stage-consent" in page.content and b"Email address" in page.content
    token = page.content.decode().split('name="token" value="')[1].split('"')[0]
    done = client.post(response["Location"], {"component": "ak-stage-consent", "token": token})
    assert done.status_code == 302
    back = client.get(done["Location"])
    code = code_from(back)
    assert exchange(Client(), provider, code, verifier).status_code == 200
    assert UserConsent.objects.filter(user=alice, application=provider.application).exists()
    # consent remembered: the next authorize goes straight through the flow
    again = client.get(authorize_url(provider)[0])
    follow = client.get(again["Location"])
    assert follow.status_code == 302 and code_from(client.get(follow["Location"]))
    none = client.get(authorize_url(make_provider("other", flow="default-provider-authorization-explicit-consent"),
                                    prompt="none")[0])
    assert "error=consent_required" in none["Location"]


def test_end_session_checks_redirect_and_hint(make_provider, browser):
    client, session = browser
    make_provider()
    other = make_provider("other", signing="rsa")
    code, verifier = get_code(client, other)
    foreign_hint = exchange(Client(), other, code, verifier).json()["id_token"]
    bad = client.get(f"/application/o/grafana/end-session/?{urlencode({'post_logout_redirect_uri': 'https://evil.com/'})}")
    assert bad.status_code == 400
    bad = client.get(f"/application/o/grafana/end-session/?{urlencode({'id_token_hint': foreign_hint})}")
    assert bad.status_code == 400
    from core.accounts.models import AuthenticatedSession

    assert AuthenticatedSession.objects.filter(pk=session.pk).exists()
    assert client.get("/application/o/nope/end-session/").status_code == 404


def test_events_recorded_without_secrets(make_provider, browser):
    client, _ = browser
    provider = make_provider()
    code, verifier = get_code(client, provider)
    body = exchange(Client(), provider, code, verifier).json()
    # as authentik: the authorization is recorded, the code exchange that completes it is not
    assert Event.objects.filter(action="authorize_application", app="grafana").exists()
    assert not Event.objects.filter(action="login", context__method="token").exists()
    text = str([e.context for e in Event.objects.all()])
    assert body["access_token"] not in text and code not in text and provider.client_secret not in text
