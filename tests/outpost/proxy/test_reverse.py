"""Proxy mode: identity headers to the upstream, client spoofing stripped even on unauthenticated paths."""

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import outpost.proxy as proxy
from outpost.proxy.reverse import add_catch_all
from outpost.proxy.session import Session, new_session_id, sign_cookie

from .conftest import outpost_config, provider_json


@pytest.fixture
async def env():
    async def echo(request):
        return web.json_response({"path": request.path_qs, "headers": dict(request.headers),
                                  "body": (await request.read()).decode()})
    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", echo)
    upstream = TestServer(upstream_app, host="127.0.0.1")
    await upstream.start_server()
    app = web.Application()
    outpost = proxy.setup(app, outpost_config())
    add_catch_all(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    outpost.update([provider_json(mode="proxy", internal_host=str(upstream.make_url("/")).rstrip("/"))])
    yield client, outpost
    await client.close()
    await upstream.close()


async def session_cookie(outpost):
    import time
    app = outpost.apps.lookup("ext.t.goauthentik.io")
    s = Session(new_session_id(), app.client_id, {"sub": "u1", "preferred_username": "alice"}, "tok",
                expires_at=time.time() + 60)
    await outpost.store.put(s)
    return f"{app.cookie_name}={sign_cookie(s.id, cookie_secret=app.cookie_secret, client_id=app.client_id)}"


async def test_unauthenticated_redirects_to_start(env):
    client, _ = env
    r = await client.get("/foo/bar%2Fbaz", headers={"Host": "ext.t.goauthentik.io"}, allow_redirects=False)
    assert r.status == 302
    assert r.headers["Location"] == ("https://ext.t.goauthentik.io/outpost.goauthentik.io/start?rd="
                                     "https%3A%2F%2Fext.t.goauthentik.io%2Ffoo%2Fbar%252Fbaz")


async def test_authenticated_gets_headers_and_spoofs_stripped(env):
    client, outpost = env
    cookie = await session_cookie(outpost)
    r = await client.post("/app/x?y=1", data="hello", headers={
        "Host": "ext.t.goauthentik.io", "Cookie": cookie, "X_Authentik_Username": "root",
        "x-authentik-uid": "0", "Connection": "X-Authentik-Username"})
    assert r.status == 200
    body = await r.json()
    h = body["headers"]
    assert body["path"] == "/app/x?y=1" and body["body"] == "hello"
    assert h["X-Authentik-Username"] == "alice" and h["X-Authentik-Uid"] == "u1"
    assert not [k for k in h if "_" in k]
    assert h["X-Forwarded-Host"] == "ext.t.goauthentik.io"


async def test_skip_path_strips_client_identity(env):
    """authentik quirk §8.2: allowlisted requests passed client X-authentik-* through. Not here."""
    client, _ = env
    r = await client.get("/skip/x", headers={"Host": "ext.t.goauthentik.io", "X-Authentik-Username": "admin",
                                            "X_AUTHENTIK_GROUPS": "admins", "Authorization": "Bearer keep"})
    assert r.status == 200
    h = (await r.json())["headers"]
    assert not [k for k in h if k.lower().replace("_", "-").startswith("x-authentik-")]
    assert h["Authorization"] == "Bearer keep"


async def test_upstream_down_502(env):
    client, outpost = env
    outpost.update([provider_json(mode="proxy", internal_host="http://127.0.0.1:9")])
    cookie = await session_cookie(outpost)
    r = await client.get("/", headers={"Host": "ext.t.goauthentik.io", "Cookie": cookie})
    assert r.status == 502


async def test_xhr_401(env):
    client, _ = env
    r = await client.get("/api", headers={"Host": "ext.t.goauthentik.io", "Accept": "application/json"},
                         allow_redirects=False)
    assert r.status == 401


async def test_embedded_dispatch_by_host(env):
    """The embedded outpost's middleware (inside ``ak server``): a proxy-mode host is proxied, any other host
    reaches the core's own handler, /outpost.goauthentik.io/* keeps its routes."""
    from outpost.proxy.forward_auth import start
    from outpost.proxy.reverse import proxy_mode_hosts

    _, outpost = env

    async def core(request):
        return web.Response(text="core")

    app = web.Application(middlewares=[proxy_mode_hosts])
    app[proxy.OUTPOST_KEY] = outpost
    app.router.add_get("/outpost.goauthentik.io/start", start)
    app.router.add_route("*", "/{tail:.*}", core)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        r = await client.get("/x", headers={"Host": "ext.t.goauthentik.io"}, allow_redirects=False)
        assert r.status == 302 and "/outpost.goauthentik.io/start?rd=" in r.headers["Location"]
        cookie = await session_cookie(outpost)
        r = await client.get("/x?y=1", headers={"Host": "ext.t.goauthentik.io", "Cookie": cookie})
        assert r.status == 200 and (await r.json())["path"] == "/x?y=1"
        r = await client.get("/x", headers={"Host": "auth.example.com"})
        assert r.status == 200 and await r.text() == "core"
        r = await client.get("/outpost.goauthentik.io/start", headers={"Host": "ext.t.goauthentik.io"},
                             allow_redirects=False)
        assert r.status == 302 and r.headers["Location"].startswith("http://fake-auth.t.goauthentik.io/auth?")
        outpost.update([provider_json()])  # forward_single only: nothing is dispatched any more
        r = await client.get("/x", headers={"Host": "ext.t.goauthentik.io"})
        assert r.status == 200 and await r.text() == "core"
