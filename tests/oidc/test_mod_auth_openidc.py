"""A real relying party against the real core: Apache httpd + mod_auth_openidc (Debian's packages).

One ``ak server`` serves two applications: one whose provider signs RS256 with a keypair (made by a
start-up blueprint, as an administrator would ship it) and one signing HS256 with its client secret
(made through the REST API). For each, an Apache of its own protects ``/protected``, and a Python
HTTP client plays the browser, following every redirect by hand:

    GET /protected/claims -> /application/o/authorize/ -> /if/flow/default-authentication-flow/
    -> flow executor (identification, password) -> authorize -> Apache's redirect_uri?code=
    -> Apache: /token/ (PKCE S256, client authentication), ID token check, /userinfo/
    -> /protected/claims shows the claims Apache passes to the application.

Then: mod_auth_openidc's info hook (tokens) and its refresh (access_token_refresh_interval=0),
introspection and revocation of those tokens with the client credentials, and logout through
``redirect_uri?logout=`` reaching the core's end-session endpoint (which ends the core session, and
mod_auth_openidc revokes its tokens at /revoke/).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.oidc.keys import self_signed
from tests.conftest import need
from tests.oidc.support_apache import ApacheRP, available, openidc_version
from tests.support.api import Api
from tests.support.server import free_port, start_core

BOOTSTRAP_TOKEN = "apache-rp-bootstrap-token-" + "x" * 40  # noqa: S105 - a test token
PASSWORD = "Apache-RP-correct-horse-7!"  # noqa: S105 - a test password
SCOPE = "openid profile email offline_access"
GROUP = "Apache Readers"
MAX_HOPS = 25
IMPLICIT_CONSENT = "default-provider-authorization-implicit-consent"
# One application per signing mode; RS256 comes from a blueprint, HS256 from the REST API.
CASES = {
    "rs256": {"slug": "apache-rs256", "client_id": "apache-rs256-client",
              "token_auth": ""},  # mod_auth_openidc's own choice from the discovery document
    "hs256": {"slug": "apache-hs256", "client_id": "apache-hs256-client",
              "token_auth": "OIDCProviderTokenEndpointAuth client_secret_post"},
}

BLUEPRINT = """version: 1
metadata: {{name: apache relying party (RS256)}}
entries:
  - model: authentik_crypto.certificatekeypair
    id: key
    identifiers: {{name: apache-rp-signing}}
    attrs:
      certificate_data: {certificate}
      key_data: {key}
  - model: authentik_providers_oauth2.oauth2provider
    id: provider
    identifiers: {{name: apache-rs256}}
    attrs:
      client_type: confidential
      client_id: {client_id}
      client_secret: {client_secret}
      signing_key: !KeyOf key
      authorization_flow: !Find [authentik_flows.flow, [slug, {flow}]]
      redirect_uris:
        - {{matching_mode: strict, url: "{redirect}"}}
        - {{matching_mode: strict, url: "{logged_out}"}}
      property_mappings:
        - !Find [authentik_providers_oauth2.scopemapping, [managed, goauthentik.io/providers/oauth2/scope-openid]]
        - !Find [authentik_providers_oauth2.scopemapping, [managed, goauthentik.io/providers/oauth2/scope-email]]
        - !Find [authentik_providers_oauth2.scopemapping, [managed, goauthentik.io/providers/oauth2/scope-profile]]
        - !Find [authentik_providers_oauth2.scopemapping, [managed, goauthentik.io/providers/oauth2/scope-offline_access]]
  - model: authentik_core.application
    identifiers: {{slug: {slug}}}
    attrs: {{name: Apache RS256, provider: !KeyOf provider}}
"""


# --- the REST API and the core -----------------------------------------------------------------


def _pem(value: str) -> str:
    return json.dumps(value)  # a YAML double-quoted scalar keeps the PEM's newlines


def write_rs256_blueprint(directory: Path, port: int, client_secret: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    base = f"http://127.0.0.1:{port}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "apache-rs256.yaml").write_text(BLUEPRINT.format(
        certificate=_pem(self_signed(key, "apache-rp-signing")), key=_pem(key_pem),
        client_id=CASES["rs256"]["client_id"], client_secret=client_secret, flow=IMPLICIT_CONSENT,
        redirect=f"{base}/protected/redirect_uri", logged_out=f"{base}/logged-out.html",
        slug=CASES["rs256"]["slug"]))


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {name: free_port() for name in (*CASES, "narrow")}


@pytest.fixture(scope="module")
def core(tmp_path_factory, ports):
    need(available(), "apache2 with mod_auth_openidc (Debian: apache2 libapache2-mod-auth-openidc)")
    data = tmp_path_factory.mktemp("core")
    write_rs256_blueprint(data / "blueprints", ports["rs256"], "rs256-secret-" + secrets.token_urlsafe(32))
    server = start_core(data, bootstrap_token=BOOTSTRAP_TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(core):
    client = Api(core.url, BOOTSTRAP_TOKEN)
    yield client
    client.close()


def make_application(api: Api, port: int, slug: str, client_id: str, scopes: str) -> None:
    """An HS256 provider (made through the REST API) mapping exactly ``scopes``, and its application."""
    flow = api.one("/flows/instances/", slug=IMPLICIT_CONSENT)
    mappings = [m["pk"] for m in api("GET", "/propertymappings/provider/scope/")["results"]
                if m["scope_name"] in scopes.split() and m["managed"]]
    assert len(mappings) == len(scopes.split()), mappings
    base = f"http://127.0.0.1:{port}"
    provider = api("POST", "/providers/oauth2/", json={
        "name": slug, "client_type": "confidential", "client_id": client_id,
        "authorization_flow": flow["pk"], "property_mappings": mappings,
        "redirect_uris": [{"matching_mode": "strict", "url": f"{base}/protected/redirect_uri"},
                          {"matching_mode": "strict", "url": f"{base}/logged-out.html"}]})
    api("POST", "/core/applications/", json={"name": slug.replace("-", " ").title(), "slug": slug,
                                             "provider": provider["pk"]})


def make_hs256_application(api: Api, port: int) -> None:
    make_application(api, port, CASES["hs256"]["slug"], CASES["hs256"]["client_id"], SCOPE)


def make_user(api: Api, username: str) -> dict:
    group = api("GET", "/core/groups/", params={"name": GROUP})["results"]
    group = group[0] if group else api("POST", "/core/groups/", json={"name": GROUP})
    user = api("POST", "/core/users/", json={"username": username, "name": f"{username.title()} Rp",
                                             "email": f"{username}@example.test", "groups": [group["pk"]]})
    api("POST", f"/core/users/{user['pk']}/set_password/", json={"password": PASSWORD})
    return user


# --- the browser --------------------------------------------------------------------------------


class Browser:
    """requests.Session that follows redirects by hand, answering the core's login flow on the way."""

    def __init__(self, core_url: str, username: str):
        self.core_url = core_url
        self.username = username
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "gatehouse-apache-rp-test/1"
        self.hops: list[str] = []

    def close(self) -> None:
        self.session.close()

    def get(self, url: str) -> requests.Response:
        """GET ``url`` and follow redirects (logging in when the core asks); the final answer."""
        self.hops = []
        for _ in range(MAX_HOPS):
            self.hops.append(url)
            response = self.session.get(url, allow_redirects=False, timeout=30)
            if response.status_code not in (301, 302, 303, 307):
                return response
            url = urljoin(url, response.headers["Location"])
            parts = urlsplit(url)
            if url.startswith(self.core_url) and parts.path.startswith("/if/flow/"):
                self.hops.append(url)
                url = urljoin(self.core_url, self.login(parts.path.split("/")[3], parts.query))
        raise AssertionError(f"more than {MAX_HOPS} redirects: {self.hops}")

    def login(self, slug: str, query: str) -> str:
        """Answer the flow through /api/v3/flows/executor/<slug>/ as the flow page does; returns ``to``."""
        executor = f"{self.core_url}/api/v3/flows/executor/{slug}/?{urlencode({'query': query})}"
        challenge = self.session.get(executor, timeout=30).json()
        for _ in range(10):
            component = challenge.get("component")
            if component == "xak-flow-redirect":
                return challenge["to"]
            if component == "ak-stage-identification":
                answer = {"uid_field": self.username}
            elif component == "ak-stage-password":
                answer = {"password": PASSWORD}
            else:
                raise AssertionError(f"unexpected challenge in {slug}: {challenge}")
            response = self.session.post(executor, json={"component": component, **answer}, timeout=30)
            assert response.status_code == 200, f"{component}: {response.status_code} {response.text[:300]}"
            challenge = response.json()
            assert not challenge.get("response_errors"), challenge
        raise AssertionError(f"flow {slug} did not finish: {challenge}")


# --- helpers on the client's side of the core -----------------------------------------------


def introspect(core, client_id: str, secret: str, token: str) -> dict:
    response = httpx.post(f"{core.url}/application/o/introspect/", data={"token": token},
                          auth=(client_id, secret), timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def revoke(core, client_id: str, secret: str, token: str, hint: str) -> None:
    response = httpx.post(f"{core.url}/application/o/revoke/",
                          data={"token": token, "token_type_hint": hint}, auth=(client_id, secret), timeout=15)
    assert response.status_code == 200, response.text


def rp_revocations(core) -> int:
    """How many /revoke/ requests mod_auth_openidc made that the core answered 200 (its access log)."""
    count = 0
    for line in core.output().splitlines():
        if '"/application/o/revoke/"' not in line or "mod_auth_openidc" not in line:
            continue
        entry = json.loads(line)
        count += entry.get("user_agent") == "mod_auth_openidc" and entry.get("status") == 200
    return count


def info(browser: Browser, rp: ApacheRP, **params) -> dict:
    """mod_auth_openidc's info hook (OIDCInfoHook): what its session holds."""
    response = browser.session.get(rp.redirect_uri, params={"info": "json", **params}, allow_redirects=False,
                                   timeout=30)
    assert response.status_code == 200, f"info hook: {response.status_code} {response.text[:300]}\n{rp.error_log()}"
    return response.json()


# --- the test -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_mod_auth_openidc_login_refresh_introspect_revoke_logout(core, api, ports, tmp_path, case):
    spec = CASES[case]
    if case == "hs256":
        make_hs256_application(api, ports[case])
    provider = api.one("/providers/oauth2/", client_id=spec["client_id"])
    client_id, secret = provider["client_id"], provider["client_secret"]
    username = f"reader-{case}"
    make_user(api, username)
    metadata_url = f"{core.url}/application/o/{spec['slug']}/.well-known/openid-configuration"
    rp = ApacheRP(tmp_path / "apache", port=ports[case], metadata_url=metadata_url, client_id=client_id,
                  client_secret=secret, scope=SCOPE, extra=spec["token_auth"])
    browser = Browser(core.url, username)

    def context() -> str:
        return (f"mod_auth_openidc {openidc_version()}\n--- core log:\n{core.tail(30)}\n"
                f"--- apache error log:\n{rp.error_log()}")

    try:
        rp.start()

        # 1. The whole code flow; the application sees the user's claims.
        page = browser.get(f"{rp.url}/protected/claims")
        assert page.status_code == 200, f"{page.status_code} {page.text[:300]}\nhops {browser.hops}\n{context()}"
        paths = [urlsplit(h).path for h in browser.hops]
        assert "/application/o/authorize/" in paths and "/protected/redirect_uri" in paths, browser.hops
        assert "/if/flow/default-authentication-flow/" in paths, browser.hops
        authorize = parse_qs(urlsplit(next(h for h in browser.hops if "/application/o/authorize/" in h)).query)
        assert authorize["code_challenge_method"] == ["S256"] and authorize["redirect_uri"] == [rp.redirect_uri]
        claims = page.json()
        assert claims["REMOTE_USER"] == username, claims
        assert claims["AUTH_TYPE"] == "openid-connect"
        assert claims["OIDC_CLAIM_preferred_username"] == username
        assert claims["OIDC_CLAIM_email"] == f"{username}@example.test"
        assert claims["OIDC_CLAIM_name"] == f"{username.title()} Rp"
        assert claims["OIDC_CLAIM_groups"] == GROUP
        assert claims["OIDC_CLAIM_iss"] == f"{core.url}/application/o/{spec['slug']}/"
        assert claims["OIDC_CLAIM_aud"] == client_id
        assert claims["OIDC_access_token"] and claims["OIDC_refresh_token"]

        # 2. The tokens mod_auth_openidc holds; introspection with the client's credentials.
        held = info(browser, rp)
        access, refresh = held["access_token"], held["refresh_token"]
        assert access == claims["OIDC_access_token"] and refresh == claims["OIDC_refresh_token"]
        assert held["userinfo"]["preferred_username"] == username and held["userinfo"]["groups"] == [GROUP]
        assert held["id_token"]["aud"] == client_id and held["id_token"]["nonce"]
        described = introspect(core, client_id, secret, access)
        assert described["active"] is True and described["client_id"] == client_id, described
        assert described["sub"] == held["id_token"]["sub"] and described["token_type"] == "access_token"
        assert introspect(core, client_id, secret, refresh)["active"] is True

        # 3. Refresh through the info hook: new tokens; the old refresh token is spent (rotation).
        renewed = info(browser, rp, access_token_refresh_interval="0")
        assert renewed["access_token"] != access and renewed["refresh_token"] != refresh, \
            f"no refresh happened\n{context()}"
        assert introspect(core, client_id, secret, renewed["access_token"])["active"] is True
        assert introspect(core, client_id, secret, refresh)["active"] is False
        again = browser.get(f"{rp.url}/protected/claims")
        assert again.status_code == 200 and again.json()["OIDC_access_token"] == renewed["access_token"]

        # 4. Revocation of the first access token (RFC 7009): inactive, refused at /userinfo/.
        revoke(core, client_id, secret, access, "access_token")
        assert introspect(core, client_id, secret, access)["active"] is False
        assert httpx.get(f"{core.url}/application/o/userinfo/", headers={"Authorization": f"Bearer {access}"},
                         timeout=15).status_code == 401
        assert introspect(core, client_id, secret, renewed["access_token"])["active"] is True

        # 5. Logout through mod_auth_openidc: the core's end-session endpoint ends the login session.
        sessions = api("GET", "/core/authenticated_sessions/", params={"user__username": username})["results"]
        assert len(sessions) == 1, sessions
        revoked_before = rp_revocations(core)
        out = browser.get(f"{rp.redirect_uri}?{urlencode({'logout': rp.logged_out_url})}")
        assert out.status_code == 200 and "logged out" in out.text, f"{out.status_code} {browser.hops}"
        end_session = next((h for h in browser.hops if "/end-session/" in h), "")
        assert end_session.startswith(f"{core.url}/application/o/{spec['slug']}/end-session/?"), browser.hops
        sent = parse_qs(urlsplit(end_session).query)
        assert sent["post_logout_redirect_uri"] == [rp.logged_out_url] and sent["id_token_hint"], sent
        assert api("GET", "/core/authenticated_sessions/", params={"user__username": username})["results"] == []
        # Before redirecting, mod_auth_openidc revoked the access and refresh tokens it held (the
        # discovery document names the revocation endpoint); ending the session removed them anyway.
        deadline = time.monotonic() + 10  # the access log line is written as the response goes out
        while rp_revocations(core) < revoked_before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rp_revocations(core) == revoked_before + 2, f"{context()}"
        for token in (renewed["access_token"], renewed["refresh_token"]):
            assert introspect(core, client_id, secret, token)["active"] is False
        # The next visit needs a new login at the core: Apache's and the core's sessions are gone.
        response = browser.session.get(f"{rp.url}/protected/claims", allow_redirects=False, timeout=30)
        assert response.status_code == 302 and "/application/o/authorize/" in response.headers["Location"]
        response = browser.session.get(response.headers["Location"], allow_redirects=False, timeout=30)
        assert response.status_code == 302 and response.headers["Location"].startswith("/if/flow/"), \
            response.headers.get("Location")
    finally:
        browser.close()
        rp.stop()


def test_mod_auth_openidc_asking_for_unmapped_scopes_signs_in(core, api, ports, tmp_path):
    """An RP configured with ``openid email profile offline_access groups`` against a provider that
    maps only openid, email and profile signs in, as on authentik: the unmapped scopes are dropped
    (one core log line names them), and the dropped ``offline_access`` gives no refresh token."""
    slug, client_id = "apache-narrow", "apache-narrow-client"
    make_application(api, ports["narrow"], slug, client_id, "openid email profile")
    secret = api.one("/providers/oauth2/", client_id=client_id)["client_secret"]
    make_user(api, "reader-narrow")
    rp = ApacheRP(tmp_path / "apache", port=ports["narrow"], client_id=client_id, client_secret=secret,
                  metadata_url=f"{core.url}/application/o/{slug}/.well-known/openid-configuration",
                  scope="openid email profile offline_access groups")
    browser = Browser(core.url, "reader-narrow")
    try:
        rp.start()
        page = browser.get(f"{rp.url}/protected/claims")
        assert page.status_code == 200, (f"{page.status_code} {page.text[:300]}\nhops {browser.hops}\n"
                                         f"{core.tail(30)}\n{rp.error_log()}")
        authorize = parse_qs(urlsplit(next(h for h in browser.hops if "/application/o/authorize/" in h)).query)
        assert authorize["scope"] == ["openid email profile offline_access groups"], authorize
        claims = page.json()
        assert claims["REMOTE_USER"] == "reader-narrow" and claims["OIDC_CLAIM_email"] == "reader-narrow@example.test"
        assert claims["OIDC_access_token"] and "OIDC_refresh_token" not in claims, claims
        held = info(browser, rp)
        assert not held.get("refresh_token"), held
        described = introspect(core, client_id, secret, held["access_token"])
        assert described["active"] is True and described["scope"] == "openid email profile", described
        dropped = [json.loads(line)["event"] for line in core.output().splitlines()
                   if f"provider {slug}:" in line and "not mapped" in line]
        assert dropped and "offline_access groups" in dropped[0], core.tail(30)
    finally:
        browser.close()
        rp.stop()
