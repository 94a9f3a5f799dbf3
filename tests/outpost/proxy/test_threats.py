"""THREATS.md 1-10 at the proxy outpost: each attack performed, each shown to fail closed.

Map (THREATS number -> tests; tests in this file unless a module is named):

1.  Fail open: test_store_exception_is_500_never_2xx, test_no_snapshot_400, test_malformed_access_not_served,
    test_idp_down_during_header_auth_502; test_forward_auth: test_missing_headers_500, test_unknown_host_400,
    test_bad_cookies_never_2xx; test_header_auth: test_bearer_refused_401_never_2xx, test_idp_unreachable_502;
    test_reverse: test_upstream_down_502; test_websocket: test_upstream_refuses_502;
    test_identity_required (a login or token whose claims name no user: 500 in every flavour and proxy mode,
    never stored at the callback; issue 8 item 2).
2.  Spoofed target: test_untrusted_peer_forwarded_headers_400, test_no_trusted_networks_trusts_no_one,
    test_proxy_forwarded_host_only_from_trusted_peer, test_outpost_path_target_gains_nothing;
    test_forward_auth: test_nginx (X-Original-URI never read), test_unknown_host_400,
    test_cross_application_cookie_refused; tests/protocols/test_forward.py:
    test_nginx_never_reads_original_uri, test_x_forwarded_ignores_other_headers,
    test_extract_target_refuses_untrusted_peer_for_header_flavours; test_apps: test_no_single_app_fallback.
3.  Unparsable client address: test_garbage_xff_never_skips_a_check, test_proxy_garbage_xff_replaced;
    tests/protocols/test_forward.py: test_client_chain.
4.  Path and host confusion: test_proxy_path_confusion_never_skips, test_host_compared_case_insensitively;
    test_forward_auth: test_skip_path_sends_empty_identity_headers; tests/protocols/test_forward.py:
    test_normalize_path*, test_skip_anchored, test_in_cookie_domain, test_hosts_equal,
    test_skip_never_matches_an_ambiguous_path; test_path_judged (paths public only once decoded or resolved,
    or to a Java server -- ``/admin/..%2Fpublic/x``, ``/public/..;/admin/x`` -- get the login in every flavour
    and proxy mode; proxy mode forwards the judged target byte for byte; issue 8 item 6).
5.  Header smuggling: test_connection_cannot_strip_identity_or_basic_auth, test_websocket:
    test_frames_both_ways_with_identity_headers; test_reverse: test_authenticated_gets_headers_and_spoofs_stripped,
    test_skip_path_strips_client_identity; test_headers: test_strip_client_identity_every_spelling,
    test_connection_cannot_remove_ours, test_underscore_initial.
6.  Open redirect: test_proxy_start_redirect_stays_on_host; test_forward_auth: test_start_validates_rd;
    tests/protocols/test_forward.py: test_open_redirect_vectors_refused, test_check_redirect_param_vectors,
    test_domain_mode_redirects.
7.  Session fixation and loops: test_fixated_prelogin_cookie_never_becomes_a_session; test_forward_auth:
    test_full_login_then_identity_headers (id rotated in log_in), test_callback_from_another_browser_400,
    test_sign_out (cookie and server-side session cleared); test_oauth: test_state_checks;
    test_start_sign_out (a start link keeps a signed-in session, a completed login replaces and deletes it,
    the session id never appears in the authorize URL; sign_out without a session still reaches the
    provider's end-session; issue 8 item 12).
8.  Cross-application tokens: test_forward_auth: test_cross_application_cookie_refused; test_header_auth:
    test_bearer_issued_for_another_application_refused, test_basic_id_token_verified; test_policy:
    test_cross_application_session_refused.
9.  Health and metrics: test_probe_user_agent_gains_nothing, test_health_like_paths_need_auth_in_proxy_mode
    (the outpost's own health/metrics listeners live in outpost/app.py, not in this layer).
10. XHR and preflight: test_proxy_preflight_and_xhr_401; test_forward_auth: test_xhr_401, test_preflight_401;
    test_reverse: test_xhr_401; test_header_auth: test_proxy_refused_credentials_401_not_redirect.
(12, revocation, at this layer: test_forward_auth: test_session_end_and_revocation; test_header_auth:
test_cache_hit_still_decides_per_request_and_session_end_drops_it; test_websocket: test_denied_user_websocket_403.)
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import outpost.proxy as proxy
from outpost.proxy.reverse import add_catch_all
from outpost.proxy.session import MemoryStore, Session, new_session_id, sign_cookie
from protocols.trust import TrustedNetworks

from .conftest import outpost_config, provider_json
from .fake_idp import FakeIdP

HOST = "ext.t.goauthentik.io"


async def start(trusted=None, store=None, mode="forward_single", internal_host="http://127.0.0.1:9", **overrides):
    idp = await FakeIdP(alg="RS256").start()
    app = web.Application()
    config = outpost_config() if trusted is None else \
        outpost_config(trusted_proxy_cidrs=TrustedNetworks.parse(trusted).networks)
    outpost = proxy.setup(app, config, store=store)
    if mode == "proxy":
        add_catch_all(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    outpost.update([provider_json(oidc_configuration=idp.oidc_configuration(), client_id=idp.client_id,
                                  client_secret=idp.client_secret, mode=mode, internal_host=internal_host,
                                  **overrides)], outpost_name="test-outpost")
    return idp, client, outpost


@pytest.fixture
async def stack():
    opened = []

    async def make(**kwargs):
        env = await start(**kwargs)
        opened.append(env)
        return env
    yield make
    for idp, client, _ in opened:
        await client.close()
        await idp.close()


@pytest.fixture
async def upstream():
    seen = []

    async def echo(request):
        seen.append({"path": request.path_qs, "headers": dict(request.headers)})
        return web.json_response(seen[-1])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/")).rstrip("/"), seen
    await server.close()


def fwd(uri="/", host=HOST, **extra):
    return {"X-Forwarded-Proto": "https", "X-Forwarded-Host": host, "X-Forwarded-Uri": uri, **extra}


async def cookie_for(outpost, sub="user-sub", claims=None):
    app = outpost.apps.lookup(HOST)
    s = Session(new_session_id(), app.client_id, {"sub": sub, "preferred_username": "alice", "sid": "core-sid",
                                                   **(claims or {})}, "tok", expires_at=time.time() + 60)
    await outpost.store.put(s)
    return f"{app.cookie_name}={sign_cookie(s.id, cookie_secret=app.cookie_secret, client_id=app.client_id)}"


async def auth(client, headers, flavour="traefik"):
    return await client.get(f"/outpost.goauthentik.io/auth/{flavour}", headers=headers, allow_redirects=False)


# --- 1 -----------------------------------------------------------------------------------------------------

class ExplodingStore(MemoryStore):
    async def get(self, session_id):
        raise RuntimeError("store broke")


async def test_store_exception_is_500_never_2xx(stack):
    _, client, outpost = await stack(store=ExplodingStore())
    app = outpost.apps.lookup(HOST)
    cookie = f"{app.cookie_name}={sign_cookie(new_session_id(), cookie_secret=app.cookie_secret, client_id=app.client_id)}"
    r = await auth(client, {**fwd("/"), "Cookie": cookie})
    assert r.status == 500


async def test_no_snapshot_400(stack):
    _, client, outpost = await stack()
    outpost.update([])  # core unreachable at start: nothing configured
    assert (await auth(client, fwd("/"))).status == 400


async def test_malformed_access_not_served(stack):
    idp, client, outpost = await stack()
    outpost.update([provider_json(oidc_configuration=idp.oidc_configuration(), access={"default": "maybe"})])
    assert outpost.apps.errors and (await auth(client, fwd("/"))).status == 400


async def test_idp_down_during_header_auth_502(stack):
    idp, client, _ = await stack()
    idp.fail_status = 503
    assert (await auth(client, fwd("/", Authorization="Bearer t"))).status == 502


# --- 2 -----------------------------------------------------------------------------------------------------

async def test_untrusted_peer_forwarded_headers_400(stack):
    _, client, outpost = await stack(trusted=["10.0.0.0/8"])  # the test client (127.0.0.1) is not a proxy
    cookie = await cookie_for(outpost)
    for flavour, headers in (("traefik", fwd("/")), ("caddy", fwd("/")),
                             ("nginx", {"X-Original-URL": f"https://{HOST}/"})):
        r = await auth(client, {**headers, "Cookie": cookie}, flavour)
        assert r.status == 400 and "X-Authentik-Uid" not in r.headers, flavour


async def test_no_trusted_networks_trusts_no_one(stack):
    _, client, outpost = await stack(trusted=[])
    cookie = await cookie_for(outpost)
    assert (await auth(client, {**fwd("/"), "Cookie": cookie})).status == 400


async def test_proxy_forwarded_host_only_from_trusted_peer(stack, upstream):
    internal, seen = upstream
    _, client, outpost = await stack(trusted=["10.0.0.0/8"], mode="proxy", internal_host=internal)
    # Untrusted peer: X-Forwarded-Host is ignored, the Host header decides (an unknown host -> 400).
    r = await client.get("/", headers={"Host": "unknown.example", "X-Forwarded-Host": HOST}, allow_redirects=False)
    assert r.status == 400 and not seen
    _, client2, _ = await stack(mode="proxy", internal_host=internal)  # 127.0.0.1 trusted by default
    r = await client2.get("/", headers={"Host": "unknown.example", "X-Forwarded-Host": HOST}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith(f"https://{HOST}/outpost.goauthentik.io/start")


async def test_outpost_path_target_gains_nothing(stack):
    _, client, _ = await stack()
    for uri in ("/outpost.goauthentik.io/start", "/outpost.goauthentik.io/auth/traefik", "/x/../outpost.goauthentik.io/"):
        assert (await auth(client, fwd(uri))).status == 302
        r = await auth(client, {"X-Original-URL": f"https://{HOST}{uri}"}, "nginx")
        assert r.status == 401


# --- 3 -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("xff", ["garbage", "1.2.3.4, nonsense", "", "::::", "1.2.3.4 5.6.7.8", "[::1]:80"])
async def test_garbage_xff_never_skips_a_check(stack, xff):
    _, client, outpost = await stack()
    r = await auth(client, fwd("/admin", **{"X-Forwarded-For": xff}))
    assert r.status == 302
    outpost.update([provider_json(oidc_configuration=outpost.apps.configs[0].oidc.__dict__ | {
        "id_token_signing_alg_values_supported": ["RS256"]}, access={"default": "deny"})])
    cookie = await cookie_for(outpost)
    r = await auth(client, {**fwd("/admin", **{"X-Forwarded-For": xff}), "Cookie": cookie})
    assert r.status == 403  # the access check still runs


async def test_proxy_garbage_xff_replaced(stack, upstream):
    internal, seen = upstream
    _, client, outpost = await stack(mode="proxy", internal_host=internal)
    cookie = await cookie_for(outpost)
    await client.get("/", headers={"Host": HOST, "Cookie": cookie, "X-Forwarded-For": "evil, 1.2.3.4"})
    assert seen[-1]["headers"]["X-Forwarded-For"] == "127.0.0.1"
    await client.get("/", headers={"Host": HOST, "Cookie": cookie, "X-Forwarded-For": "203.0.113.7"})
    assert seen[-1]["headers"]["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"


# --- 4 -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/skip/../admin", "/skip/%2e%2e/admin", "/skip%2f..%2fadmin", "/admin?/skip/x",
                                  "/admin#/skip/x", "/%252e%252e/skip/x", "/skip/..%5cadmin"])
async def test_proxy_path_confusion_never_skips(stack, upstream, path):
    internal, seen = upstream
    _, client, _ = await stack(mode="proxy", internal_host=internal)
    r = await client.get(path, headers={"Host": HOST}, allow_redirects=False)
    assert r.status == 302 and not seen


async def test_host_compared_case_insensitively(stack):
    _, client, outpost = await stack()
    cookie = await cookie_for(outpost)
    for host in ("EXT.T.GOAUTHENTIK.IO", "ext.t.goauthentik.io.", "Ext.T.GoAuthentik.io:443"):
        r = await auth(client, {**fwd("/", host=host), "Cookie": cookie})
        assert r.status == 200 and r.headers["X-Authentik-Uid"] == "user-sub", host
    assert (await auth(client, {**fwd("/", host="ext.t.goauthentik.io.evil.com"), "Cookie": cookie})).status == 400


# --- 5 -----------------------------------------------------------------------------------------------------

async def test_connection_cannot_strip_identity_or_basic_auth(stack, upstream):
    internal, seen = upstream
    _, client, outpost = await stack(mode="proxy", internal_host=internal, basic_auth_enabled=True)
    cookie = await cookie_for(outpost, claims={"ak_proxy": {"user_attributes": {"username": "u", "password": "p"}}})
    await client.get("/", headers={"Host": HOST, "Cookie": cookie,
                                   "Connection": "X-Authentik-Uid, Authorization, X-Authentik-Username",
                                   "X-AUTHENTIK-UID": "admin", "x_authentik_username": "root"})
    h = seen[-1]["headers"]
    assert h["X-Authentik-Uid"] == "user-sub" and h["X-Authentik-Username"] == "alice"
    assert h["Authorization"] == "Basic dTpw"
    assert not [k for k in h if "_" in k]


# --- 6 -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["//evil.com", "/\\evil.com", "//evil.com/%2f..", "/%2F%2Fevil.com"])
async def test_proxy_start_redirect_stays_on_host(stack, path):
    """Raw request lines (an HTTP client would turn ``//evil.com`` into a host)."""
    _, client, _ = await stack(mode="proxy")
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = dict(line.split(": ", 1) for line in head[1:])
    assert status in (302, 400)
    if status == 302:
        location = urlsplit(headers["Location"])
        assert location.netloc == HOST
        rd = parse_qs(location.query)["rd"][0]
        assert urlsplit(rd).netloc == HOST, rd


# --- 7 -----------------------------------------------------------------------------------------------------

async def test_fixated_prelogin_cookie_never_becomes_a_session(stack):
    """The attacker plants their own pre-login cookie in the victim's browser; after the victim logs in,
    the attacker's copy of that cookie is still no session (the id is replaced at login)."""
    idp, client, outpost = await stack()
    app = outpost.apps.lookup(HOST)
    r = await auth(client, fwd("/"))
    planted = r.cookies[app.cookie_name].value
    r = await auth(client, {**fwd("/"), "Cookie": f"{app.cookie_name}={planted}"})  # the victim, with it
    code, q = idp.authorize(r.headers["Location"])
    cb = f"/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code={code}&state={q['state']}"
    r = await auth(client, {**fwd(cb), "Cookie": f"{app.cookie_name}={planted}"})
    assert r.status == 302
    victim = r.cookies[app.cookie_name].value
    assert victim.split(".")[0] != planted.split(".")[0]
    assert (await auth(client, {**fwd("/"), "Cookie": f"{app.cookie_name}={victim}"})).status == 200
    assert (await auth(client, {**fwd("/"), "Cookie": f"{app.cookie_name}={planted}"})).status == 302


# --- 9 -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("agent", ["kube-probe/1.29", "GoogleHC/1.0", "ELB-HealthChecker/2.0", "Consul Health Check",
                                   "Prometheus/2.0", "goauthentik.io/outpost/healthcheck"])
async def test_probe_user_agent_gains_nothing(stack, agent):
    _, client, _ = await stack()
    r = await auth(client, fwd("/admin", **{"User-Agent": agent}))
    assert r.status == 302 and "X-Authentik-Uid" not in r.headers


@pytest.mark.parametrize("path", ["/outpost.goauthentik.io/ping", "/-/health/live/", "/metrics", "/ping",
                                  "/outpost.goauthentik.io/ping/../../admin"])
async def test_health_like_paths_need_auth_in_proxy_mode(stack, upstream, path):
    internal, seen = upstream
    _, client, _ = await stack(mode="proxy", internal_host=internal)
    r = await client.get(path, headers={"Host": HOST, "User-Agent": "kube-probe/1.29"}, allow_redirects=False)
    assert r.status in (302, 404) and not seen


# --- 10 ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "headers"), [
    ("OPTIONS", {"Access-Control-Request-Method": "POST", "Origin": "https://ext.t.goauthentik.io"}),
    ("GET", {"X-Requested-With": "XMLHttpRequest"}), ("GET", {"Accept": "application/json"}),
    ("GET", {"Sec-Fetch-Mode": "cors"}),
])
async def test_proxy_preflight_and_xhr_401(stack, upstream, method, headers):
    internal, seen = upstream
    _, client, _ = await stack(mode="proxy", internal_host=internal)
    r = await client.request(method, "/api", headers={"Host": HOST, **headers}, allow_redirects=False)
    assert r.status == 401 and not seen
