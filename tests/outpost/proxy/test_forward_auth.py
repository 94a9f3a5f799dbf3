"""Forward-auth handlers end to end in-process: aiohttp test client + fake IdP. THREATS 1, 2, 5-8, 10, 12."""

from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

import outpost.proxy as proxy
from outpost.proxy.session import new_session_id, sign_cookie

from .conftest import outpost_config, provider_json
from .fake_idp import FakeIdP

HOST = "ext.t.goauthentik.io"


@pytest.fixture
async def env():
    idp = await FakeIdP(alg="RS256").start()
    app = web.Application()
    outpost = proxy.setup(app, outpost_config())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    outpost.update([
        provider_json(oidc_configuration=idp.oidc_configuration(), client_id=idp.client_id,
                      client_secret=idp.client_secret),
        provider_json(pk=2, name="other", client_id="other-client", external_host="https://other.example.com",
                      oidc_configuration=idp.oidc_configuration()),
    ], outpost_name="test-outpost")
    yield idp, client, outpost
    await client.close()
    await idp.close()


def fwd(uri="/", host=HOST, **extra):
    return {"X-Forwarded-Proto": "https", "X-Forwarded-Host": host, "X-Forwarded-Uri": uri, **extra}


def cookie_of(response, name):
    jar = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar[name] if name in jar else None


async def auth(client, headers, cookie=None, flavour="traefik"):
    if cookie:
        headers = {**headers, "Cookie": cookie}
    return await client.get(f"/outpost.goauthentik.io/auth/{flavour}", headers=headers, allow_redirects=False)


async def log_in(idp, client, outpost, uri="/page?x=1"):
    app = outpost.apps.lookup(HOST)
    r = await auth(client, fwd(uri))
    assert r.status == 302
    location = r.headers["Location"]
    assert location.startswith(idp.url("/authorize"))
    pre = cookie_of(r, app.cookie_name)
    assert pre["httponly"] and pre["secure"] and pre["samesite"] == "Lax" and pre["path"] == "/"
    code, q = idp.authorize(location)
    cb = f"/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code={code}&state={q['state']}"
    r = await auth(client, fwd(cb), f"{app.cookie_name}={pre.value}")
    assert r.status == 302, await r.text()
    assert r.headers["Location"] == f"https://{HOST}{uri}"
    session = cookie_of(r, app.cookie_name)
    assert session.value.split(".")[0] != pre.value.split(".")[0]  # rotated at login (THREATS 7)
    return f"{app.cookie_name}={session.value}", pre.value


async def test_missing_headers_500(env):
    _, client, _ = env
    r = await auth(client, {})
    assert r.status == 500 and await r.text() == "configuration error"


async def test_unknown_host_400(env):
    _, client, _ = env
    r = await auth(client, fwd(host="evil.example"))
    assert r.status == 400 and (await r.json())["Host"] == "evil.example"


async def test_full_login_then_identity_headers(env):
    idp, client, outpost = env
    cookie, _ = await log_in(idp, client, outpost)
    r = await auth(client, fwd("/page"), cookie)
    assert r.status == 200
    assert r.headers["X-Authentik-Username"] == "alice" and r.headers["X-Authentik-Uid"] == "user-sub"
    assert r.headers["X-Authentik-Groups"] == "staff" and r.headers["X-Authentik-Meta-Outpost"] == "test-outpost"
    assert jwt.decode(r.headers["X-Authentik-Jwt"], options={"verify_signature": False})["sub"] == "user-sub"


async def test_pre_login_cookie_is_not_a_session(env):
    idp, client, outpost = env
    r = await auth(client, fwd("/"))
    name = outpost.apps.lookup(HOST).cookie_name
    r = await auth(client, fwd("/"), f"{name}={cookie_of(r, name).value}")
    assert r.status == 302


@pytest.mark.parametrize("value", ["garbage", "x" * 5000, "a.b", "\u00e9", "", "%00"])
async def test_bad_cookies_never_2xx(env, value):
    _, client, outpost = env
    r = await auth(client, fwd("/"), f"{outpost.apps.lookup(HOST).cookie_name}={value}")
    assert r.status == 302


async def test_cross_application_cookie_refused(env):
    """THREATS 8: app A's session presented to app B (signed for A, and stored for A)."""
    idp, client, outpost = env
    cookie, _ = await log_in(idp, client, outpost)
    other = outpost.apps.lookup("other.example.com")
    value = cookie.split("=", 1)[1]
    r = await auth(client, fwd("/", host="other.example.com"), f"{other.cookie_name}={value}")
    assert r.status == 302
    sid = value.split(".")[0]  # even re-signed for B, the stored session belongs to A
    forged = sign_cookie(sid, cookie_secret=other.cookie_secret, client_id=other.client_id)
    r = await auth(client, fwd("/", host="other.example.com"), f"{other.cookie_name}={forged}")
    assert r.status == 302


async def test_nginx(env):
    idp, client, outpost = env
    r = await auth(client, {"X-Original-URI": "/skip/x"}, flavour="nginx")
    assert r.status == 500
    r = await auth(client, {"X-Original-URL": f"https://{HOST}/admin", "X-Original-URI": "/skip"}, flavour="nginx")
    assert r.status == 401
    r = await auth(client, {"X-Original-URL": f"https://{HOST}/outpost.goauthentik.io/start"}, flavour="nginx")
    assert r.status == 401  # THREATS 2: an outpost path as target gains nothing
    cookie, _ = await log_in(idp, client, outpost)
    r = await auth(client, {"X-Original-URL": f"https://{HOST}/admin"}, cookie, flavour="nginx")
    assert r.status == 200 and r.headers["X-Authentik-Username"] == "alice"


async def test_skip_path_sends_empty_identity_headers(env):
    _, client, _ = env
    r = await auth(client, fwd("/skip/x", **{"X-Authentik-Username": "admin"}))
    assert r.status == 200 and r.headers["X-Authentik-Username"] == ""
    r = await auth(client, fwd("/skip/../admin"))
    assert r.status == 302


@pytest.mark.parametrize("extra", [{"Accept": "application/json"}, {"X-Requested-With": "XMLHttpRequest"}])
async def test_xhr_401(env, extra):
    _, client, _ = env
    r = await auth(client, fwd("/api", **extra))
    assert r.status == 401


async def test_preflight_401(env):
    _, client, _ = env
    r = await auth(client, fwd("/api", **{"X-Forwarded-Method": "OPTIONS", "Access-Control-Request-Method": "POST"}))
    assert r.status == 401


async def test_session_end_and_revocation(env):
    idp, client, outpost = env
    cookie, _ = await log_in(idp, client, outpost)
    assert (await auth(client, fwd("/"), cookie)).status == 200
    data = [provider_json(oidc_configuration=idp.oidc_configuration(), client_id=idp.client_id,
                          client_secret=idp.client_secret, access={"default": "allow", "deny_subjects": ["user-sub"]})]
    outpost.update(data)
    assert (await auth(client, fwd("/"), cookie)).status == 403  # applied on the next request (THREATS 12)
    data[0]["access"] = {"default": "deny", "allow_subjects": ["user-sub"]}
    outpost.update(data)
    assert (await auth(client, fwd("/"), cookie)).status == 200
    assert await outpost.end_session("core-session-hash") == 1
    assert (await auth(client, fwd("/"), cookie)).status == 302


async def test_callback_from_another_browser_400(env):
    idp, client, outpost = env
    app = outpost.apps.lookup(HOST)
    r = await auth(client, fwd("/"))
    code, q = idp.authorize(r.headers["Location"])
    other = sign_cookie(new_session_id(), cookie_secret=app.cookie_secret, client_id=app.client_id)
    cb = f"/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code={code}&state={q['state']}"
    r = await auth(client, fwd(cb), f"{app.cookie_name}={other}")
    assert r.status == 400
    r = await auth(client, fwd(cb))
    assert r.status == 400


async def test_start_validates_rd(env):
    _, client, outpost = env
    app = outpost.apps.lookup(HOST)
    for rd, expected in (("https://evil.com/", f"https://{HOST}"), ("//evil.com", f"https://{HOST}"),
                         (f"https://{HOST}/x", f"https://{HOST}/x"), ("/y?z", f"https://{HOST}/y?z")):
        r = await client.get("/outpost.goauthentik.io/start", params={"rd": rd}, headers={"Host": HOST},
                             allow_redirects=False)
        assert r.status == 302
        state = parse_qs(urlsplit(r.headers["Location"]).query)["state"][0]
        assert jwt.decode(state, app.cookie_secret, algorithms=["HS256"],
                          issuer=f"goauthentik.io/outpost/{app.client_id}")["redirect"] == expected
    r = await client.get("/outpost.goauthentik.io/start", headers={"Host": "nope.example"}, allow_redirects=False)
    assert r.status == 400


async def test_start_keeps_nginx_raw_rd_whole(env):
    """nginx's error_page sends ``/start?rd=$scheme://$http_host$request_uri`` unencoded: the original query's
    later parameters (``&b=2``) and its percent-escapes must come back after login (found by tests/e2e)."""
    _, client, outpost = env
    app = outpost.apps.lookup(HOST)
    for raw, expected in ((f"rd=https://{HOST}/p?a=1&b=%26c", f"https://{HOST}/p?a=1&b=%26c"),
                          (f"rd=https%3A%2F%2F{HOST}%2Fq%3Fa%3D1%26b%3D2&x=y", f"https://{HOST}/q?a=1&b=2"),
                          ("rd=https://evil.com/?x=1&y=2", f"https://{HOST}")):
        url = client.make_url("/outpost.goauthentik.io/start").with_query(None)
        r = await client.session.get(URL(f"{url}?{raw}", encoded=True), headers={"Host": HOST},
                                     allow_redirects=False)
        assert r.status == 302
        state = parse_qs(urlsplit(r.headers["Location"]).query)["state"][0]
        assert jwt.decode(state, app.cookie_secret, algorithms=["HS256"],
                          issuer=f"goauthentik.io/outpost/{app.client_id}")["redirect"] == expected, raw


async def test_sign_out(env):
    idp, client, outpost = env
    cookie, _ = await log_in(idp, client, outpost)
    r = await client.get("/outpost.goauthentik.io/sign_out", headers={"Host": HOST, "Cookie": cookie},
                         allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith(idp.url("/end-session") + "?id_token_hint=")
    assert cookie_of(r, outpost.apps.lookup(HOST).cookie_name).value == ""
    assert (await auth(client, fwd("/"), cookie)).status == 302
    r = await auth(client, fwd("/?X-authentik-logout=true"))  # no session: still the end-session (issue 8 item 12)
    assert r.status == 302 and r.headers["Location"] == idp.url("/end-session")


async def test_envoy(env):
    idp, client, outpost = env
    cookie, _ = await log_in(idp, client, outpost)
    r = await client.get("/outpost.goauthentik.io/auth/envoy/some/path?q=1", headers={"Host": HOST, "Cookie": cookie},
                         allow_redirects=False)
    assert r.status == 200 and r.headers["X-Authentik-Username"] == "alice"
    r = await client.get("/outpost.goauthentik.io/auth/envoy/some/path", headers={"Host": HOST}, allow_redirects=False)
    assert r.status == 302


async def test_envoy_keeps_the_query_encoded(env):
    """The original query reaches the post-login redirect as sent: an escaped ``&`` stays escaped."""
    _, client, outpost = env
    app = outpost.apps.lookup(HOST)
    url = client.make_url("/outpost.goauthentik.io/auth/envoy/p")
    r = await client.session.get(URL(f"{url}?q=a%26b&c=1", encoded=True), headers={"Host": HOST},
                                 allow_redirects=False)
    assert r.status == 302
    state = parse_qs(urlsplit(r.headers["Location"]).query)["state"][0]
    redirect = jwt.decode(state, app.cookie_secret, algorithms=["HS256"],
                          issuer=f"goauthentik.io/outpost/{app.client_id}")["redirect"]
    assert redirect == f"https://{HOST}/p?q=a%26b&c=1"


async def test_login_of_a_subject_the_lists_do_not_know_yet_refetches_once(env):
    """A user created (or added to the group) a moment before logging in: the core approved at /authorize,
    the snapshot's access lists predate it. The callback refetches before redirecting; the refreshed lists
    decide (both ways), and a login the lists already allow refetches nothing."""
    idp, client, outpost = env
    providers = [provider_json(oidc_configuration=idp.oidc_configuration(), client_id=idp.client_id,
                               client_secret=idp.client_secret, access={"default": "deny", "allow_subjects": []})]
    outpost.update(providers, outpost_name="test-outpost")
    calls = []

    async def refresh(allow: bool = True):
        calls.append(1)
        subjects = ["user-sub"] if allow else []
        outpost.update([{**providers[0], "access": {"default": "deny", "allow_subjects": subjects}}],
                       outpost_name="test-outpost")

    outpost.refresh = refresh
    cookie, _ = await log_in(idp, client, outpost)
    assert calls == [1]
    assert (await auth(client, fwd("/page"), cookie)).status == 200
    await log_in(idp, client, outpost)  # now listed: no refetch
    assert calls == [1]

    outpost.update(providers, outpost_name="test-outpost")  # not listed again, and the core's lists agree

    async def refresh_still_denied():
        await refresh(allow=False)

    outpost.refresh = refresh_still_denied
    cookie, _ = await log_in(idp, client, outpost)
    assert calls == [1, 1]
    assert (await auth(client, fwd("/page"), cookie)).status == 403  # fail closed: the lists decide
