"""Header auth (reference §2.4 steps 2-4): Bearer via introspection, Basic app password via client_credentials,
the cache, and THREATS 1, 8, 12 for header-authenticated requests. Real aiohttp servers, fake IdP."""

from __future__ import annotations

import base64
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import outpost.proxy as proxy
from outpost.proxy.header_auth import Credentials, HeaderAuthCache, parse_authorization
from outpost.proxy.reverse import add_catch_all
from outpost.proxy.session import Session

from .conftest import outpost_config, provider_json
from .fake_idp import FakeIdP

HOST = "ext.t.goauthentik.io"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def providers(idp, **overrides):
    return [provider_json(oidc_configuration=idp.oidc_configuration(), client_id=idp.client_id,
                          client_secret=idp.client_secret, **overrides),
            provider_json(pk=2, name="other", client_id="other-client", client_secret="other-secret",
                          external_host="https://other.example.com", oidc_configuration=idp.oidc_configuration())]


@pytest.fixture
async def env():
    idp = await FakeIdP(alg="RS256").start()
    idp.other_clients["other-client"] = "other-secret"
    app = web.Application()
    outpost = proxy.setup(app, outpost_config())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    outpost.update(providers(idp), outpost_name="test-outpost")
    yield idp, client, outpost
    await client.close()
    await idp.close()


def fwd(uri="/", host=HOST, **extra):
    return {"X-Forwarded-Proto": "https", "X-Forwarded-Host": host, "X-Forwarded-Uri": uri, **extra}


async def auth(client, headers):
    return await client.get("/outpost.goauthentik.io/auth/traefik", headers=headers, allow_redirects=False)


# --- parsing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("Bearer abc", Credentials("bearer", token="abc")),
    ("bearer abc", Credentials("bearer", token="abc")),
    ("BEARER  abc ", Credentials("bearer", token="abc")),
    (basic("bob", "pw:with:colons"), Credentials("basic", username="bob", password="pw:with:colons")),
    (basic("goauthentik.io/token", "tok"), Credentials("bearer", token="tok")),
    ("Basic !!!", None), ("Basic " + base64.b64encode(b"nocolon").decode(), None),
    ("Basic " + base64.b64encode(b":pw").decode(), None), ("Basic " + base64.b64encode(b"u:").decode(), None),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None), ("Bearer", None), ("Bearer ", None),
    ("Bearer a b", None), ("Bearer \u00e9", None), ("Digest x", None), ("", None), (None, None),
    ("Bearer " + "a" * 9000, None),
])
def test_parse_authorization(value, expected):
    assert parse_authorization(value) == expected


def test_cache_bounded_and_expiring():
    now = [1000.0]
    cache = HeaderAuthCache(ttl=60, size=3, clock=lambda: now[0])
    for i in range(5):
        cache.put(f"k{i}", Session("", "c", {"sub": f"s{i}", "sid": "x" if i == 4 else ""}, expires_at=2000))
    assert len(cache) == 3 and cache.get("k0") is None and cache.get("k4") is not None
    now[0] += 61
    assert cache.get("k3") is None
    cache.put("short", Session("", "c", {"sub": "s"}, expires_at=now[0] + 5))
    now[0] += 6
    assert cache.get("short") is None  # never past the token's exp
    cache.put("k", Session("", "c", {"sub": "s", "sid": "core-sid"}, expires_at=now[0] + 30))
    assert cache.forget_sid("core-sid") == 1 and cache.get("k") is None


# --- Bearer ----------------------------------------------------------------------------------------------

async def test_bearer_introspected_gives_identity_without_cookie(env):
    idp, client, _ = env
    token = idp.issue_bearer(sub="api-user")
    r = await auth(client, fwd("/api", Authorization=f"Bearer {token}"))
    assert r.status == 200
    assert r.headers["X-Authentik-Uid"] == "api-user" and r.headers["X-Authentik-Username"] == "alice"
    assert r.headers["X-Authentik-Jwt"] == token
    assert "Set-Cookie" not in r.headers
    form = idp.introspect_requests[-1]
    assert form == {"client_id": idp.client_id, "client_secret": idp.client_secret, "token": token}


async def test_bearer_issued_for_another_application_refused(env):
    """THREATS 8 (CVE-2024-47077): the IdP says active, but the token belongs to other-client."""
    idp, client, _ = env
    token = idp.issue_bearer(client_id="other-client")
    r = await auth(client, fwd("/", Authorization=f"Bearer {token}"))
    assert r.status == 401 and "X-Authentik-Uid" not in r.headers
    token = idp.issue_bearer(aud="other-client")  # our client_id, but another audience
    assert (await auth(client, fwd("/", Authorization=f"Bearer {token}"))).status == 401
    # ... while the other application accepts its own token
    token = idp.issue_bearer(client_id="other-client")
    r = await auth(client, fwd("/", host="other.example.com", Authorization=f"Bearer {token}"))
    assert r.status == 200


@pytest.mark.parametrize("case", ["inactive", "unknown", "expired", "no-sub"])
async def test_bearer_refused_401_never_2xx(env, case):
    idp, client, _ = env
    token = {"inactive": lambda: idp.issue_bearer(active=False), "unknown": lambda: "nope",
             "expired": lambda: idp.issue_bearer(exp_in=-5), "no-sub": lambda: idp.issue_bearer(sub="")}[case]()
    r = await auth(client, fwd("/", Authorization=f"Bearer {token}"))
    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_duplicate_authorization_headers_refused(env):
    idp, client, _ = env
    token = idp.issue_bearer()
    headers = [(k, v) for k, v in fwd("/").items()] + [("Authorization", f"Bearer {token}"),
                                                       ("Authorization", "Bearer other")]
    r = await client.get("/outpost.goauthentik.io/auth/traefik", headers=headers, allow_redirects=False)
    assert r.status == 401


async def test_cache_hit_still_decides_per_request_and_session_end_drops_it(env):
    idp, client, outpost = env
    token = idp.issue_bearer(sid="core-sid-1")
    headers = fwd("/", Authorization=f"Bearer {token}")
    assert (await auth(client, headers)).status == 200
    calls = len(idp.introspect_requests)
    assert (await auth(client, headers)).status == 200
    assert len(idp.introspect_requests) == calls  # served from the cache
    # The core revokes the token and ends the session: the cached identity must not outlive SESSION_END.
    idp.bearer_tokens[token]["active"] = False
    assert (await auth(client, headers)).status == 200  # still cached: nothing told us yet
    await outpost.end_session("core-sid-1")
    assert (await auth(client, headers)).status == 401
    # Per-request access on a (fresh) cached identity: denial in the snapshot applies at once.
    token = idp.issue_bearer(sub="u2")
    headers = fwd("/", Authorization=f"Bearer {token}")
    assert (await auth(client, headers)).status == 200
    outpost.apps = type(outpost.apps)(  # a new snapshot WITHOUT clearing the cache, to prove decide() runs
        [c if c.client_id != idp.client_id else
         type(c).from_json(providers(idp, access={"default": "allow", "deny_subjects": ["u2"]})[0])
         for c in outpost.apps.configs])
    calls = len(idp.introspect_requests)
    assert (await auth(client, headers)).status == 403
    assert len(idp.introspect_requests) == calls


async def test_idp_failure_502_but_skip_path_passes(env):
    idp, client, _ = env
    idp.fail_status = 500
    token = "some-token"
    r = await auth(client, fwd("/", Authorization=f"Bearer {token}"))
    assert r.status == 502
    r = await auth(client, fwd("/skip/x", Authorization=f"Bearer {token}"))
    assert r.status == 200 and r.headers["X-Authentik-Username"] == ""
    r = await auth(client, fwd("/", Authorization=basic("bob", "pw")))
    assert r.status == 502


async def test_idp_unreachable_502(env):
    idp, client, outpost = env
    conf = idp.oidc_configuration()
    conf["introspection_endpoint"] = "http://127.0.0.1:9/introspect"
    outpost.update([provider_json(oidc_configuration=conf, client_id=idp.client_id,
                                  client_secret=idp.client_secret)])
    r = await auth(client, fwd("/", Authorization="Bearer x"))
    assert r.status == 502


async def test_intercept_header_auth_off_ignores_header(env):
    idp, client, outpost = env
    outpost.update(providers(idp, intercept_header_auth=False))
    token = idp.issue_bearer()
    r = await auth(client, fwd("/", Authorization=f"Bearer {token}"))
    assert r.status == 302 and not idp.introspect_requests


# --- Basic -----------------------------------------------------------------------------------------------

async def test_basic_app_password(env):
    idp, client, _ = env
    idp.app_passwords[("bob", "app-pw")] = {"sub": "bob-sub", "groups": ["ops"]}
    r = await auth(client, fwd("/", Authorization=basic("bob", "app-pw")))
    assert r.status == 200 and r.headers["X-Authentik-Uid"] == "bob-sub"
    assert r.headers["X-Authentik-Username"] == "bob" and r.headers["X-Authentik-Groups"] == "ops"
    form = idp.token_requests[-1]
    assert form["grant_type"] == "client_credentials" and form["username"] == "bob"
    assert form["password"] == "app-pw" and form["client_id"] == idp.client_id
    assert form["scope"] == "ak_proxy email entitlements openid profile"
    r = await auth(client, fwd("/", Authorization=basic("bob", "wrong")))
    assert r.status == 401


async def test_basic_token_username_is_bearer(env):
    idp, client, _ = env
    token = idp.issue_bearer(sub="tok-user")
    r = await auth(client, fwd("/", Authorization=basic("goauthentik.io/token", token)))
    assert r.status == 200 and r.headers["X-Authentik-Uid"] == "tok-user"


@pytest.mark.parametrize("bad", [{"aud": "other-client"}, {"iss": "https://evil.example/"}, {"exp": 1}])
async def test_basic_id_token_verified(env, bad):
    idp, client, _ = env
    idp.app_passwords[("bob", "app-pw")] = {}
    idp.id_overrides.update(bad)
    r = await auth(client, fwd("/", Authorization=basic("bob", "app-pw")))
    assert r.status == 401


async def test_basic_id_token_forged_signature(env):
    idp, client, _ = env
    idp.app_passwords[("bob", "app-pw")] = {}
    from cryptography.hazmat.primitives.asymmetric import rsa
    idp.jwks_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = await auth(client, fwd("/", Authorization=basic("bob", "app-pw")))
    assert r.status == 401


# --- proxy mode ------------------------------------------------------------------------------------------

@pytest.fixture
async def proxy_env():
    idp = await FakeIdP(alg="HS256").start()

    async def echo(request):
        return web.json_response({"headers": {k: v for k, v in request.headers.items()}})
    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", echo)
    upstream = TestServer(upstream_app, host="127.0.0.1")
    await upstream.start_server()
    app = web.Application()
    outpost = proxy.setup(app, outpost_config())
    add_catch_all(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    internal = str(upstream.make_url("/")).rstrip("/")
    outpost.update([provider_json(mode="proxy", internal_host=internal, oidc_configuration=idp.oidc_configuration(),
                                  client_id=idp.client_id, client_secret=idp.client_secret)])
    yield idp, client, outpost, internal
    await client.close()
    await upstream.close()
    await idp.close()


async def test_proxy_bearer_stripped_identity_added(proxy_env):
    idp, client, _, _ = proxy_env
    token = idp.issue_bearer(sub="api-user")
    r = await client.get("/data", headers={"Host": HOST, "Authorization": f"Bearer {token}"},
                         allow_redirects=False)
    assert r.status == 200
    h = (await r.json())["headers"]
    assert "Authorization" not in h and h["X-Authentik-Uid"] == "api-user"


async def test_proxy_refused_credentials_401_not_redirect(proxy_env):
    _, client, _, _ = proxy_env
    r = await client.get("/data", headers={"Host": HOST, "Authorization": "Bearer nope"}, allow_redirects=False)
    assert r.status == 401


async def test_proxy_basic_pass_through_replaces_authorization(proxy_env):
    idp, client, outpost, internal = proxy_env
    outpost.update([provider_json(mode="proxy", internal_host=internal, oidc_configuration=idp.oidc_configuration(),
                                  client_id=idp.client_id, client_secret=idp.client_secret, basic_auth_enabled=True)])
    idp.app_passwords[("bob", "app-pw")] = {
        "ak_proxy": {"user_attributes": {"username": "bob-upstream", "password": "upstream-pw"}}}
    r = await client.get("/", headers={"Host": HOST, "Authorization": basic("bob", "app-pw")}, allow_redirects=False)
    assert r.status == 200
    h = (await r.json())["headers"]
    assert h["Authorization"] == basic("bob-upstream", "upstream-pw")


async def test_proxy_unconsumed_authorization_on_skip_path_passes(proxy_env):
    idp, client, _, _ = proxy_env
    r = await client.get("/skip/api", headers={"Host": HOST, "Authorization": "Bearer app-own-token"},
                         allow_redirects=False)
    assert r.status == 200 and (await r.json())["headers"]["Authorization"] == "Bearer app-own-token"
    token = idp.issue_bearer()  # ours: consumed, so it does not reach the application
    r = await client.get("/skip/api", headers={"Host": HOST, "Authorization": f"Bearer {token}"},
                         allow_redirects=False)
    h = (await r.json())["headers"]
    assert "Authorization" not in h and h["X-Authentik-Uid"] == "user-sub"


async def test_proxy_cookie_session_strips_authorization(proxy_env):
    _, client, outpost, _ = proxy_env
    app = outpost.apps.lookup(HOST)
    from outpost.proxy.session import new_session_id, sign_cookie
    s = Session(new_session_id(), app.client_id, {"sub": "u1", "preferred_username": "u1"}, "tok", expires_at=time.time() + 60)
    await outpost.store.put(s)
    cookie = f"{app.cookie_name}={sign_cookie(s.id, cookie_secret=app.cookie_secret, client_id=app.client_id)}"
    r = await client.get("/", headers={"Host": HOST, "Cookie": cookie, "Authorization": "Bearer x"})
    assert "Authorization" not in (await r.json())["headers"]
