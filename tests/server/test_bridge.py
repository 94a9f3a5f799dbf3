"""The aiohttp -> ASGI bridge (core/asgi.py) and the app factory's routing, in-process with small ASGI apps.

The real Django app behind the bridge is exercised in test_process.py; here each ASGI feature the
bridge must carry (bodies, headers, cookies, status codes, streaming, HEAD) is isolated.
"""

import asyncio
import hashlib
import json
import sys
import types

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from django.conf import settings

from core.server import create_app


async def read_body(receive):
    chunks, count = [], 0
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        count += 1
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks), count


async def echo_app(scope, receive, send):
    body, chunks = await read_body(receive)
    payload = json.dumps({
        "client": scope["client"], "method": scope["method"], "path": scope["path"],
        "raw_path": scope["raw_path"].decode(), "query_string": scope["query_string"].decode(),
        "scheme": scope["scheme"], "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "sha256": hashlib.sha256(body).hexdigest(), "length": len(body), "chunks": chunks,
    }).encode()
    await send({"type": "http.response.start", "status": 201, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2; Path=/; HttpOnly"), (b"x-custom", b"yes")]})
    await send({"type": "http.response.body", "body": payload})


def client_for(asgi_app, hooks=False):
    app = create_app(settings.CONFIG, asgi_app=asgi_app, hooks=hooks)
    return TestClient(TestServer(app, host="127.0.0.1"))


async def test_body_headers_cookies_status_and_peer():
    body = b"x" * (3 * 1024 * 1024 + 7)  # large enough to arrive in several chunks
    async with client_for(echo_app) as client:
        response = await client.post("/some/path%20here?token=a%26b%3D&x=1", data=body,
                                     headers={"X-Forwarded-For": "198.51.100.7", "X-Test": "t"})
        assert response.status == 201
        assert response.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
        assert response.headers["X-Custom"] == "yes"
        seen = await response.json()
    assert seen["client"][0] == "127.0.0.1"  # REMOTE_ADDR is the peer, not X-Forwarded-For
    assert seen["method"] == "POST" and seen["scheme"] == "http"
    assert seen["path"] == "/some/path here" and seen["raw_path"] == "/some/path%20here"
    assert seen["query_string"] == "token=a%26b%3D&x=1"  # raw: Django decodes it once itself
    assert ["x-forwarded-for", "198.51.100.7"] in seen["headers"] and ["x-test", "t"] in seen["headers"]
    assert all(name == name.lower() for name, _ in seen["headers"])
    assert seen["length"] == len(body) and seen["sha256"] == hashlib.sha256(body).hexdigest()


async def test_streaming_response_reaches_the_client_before_the_app_finishes():
    release = asyncio.Event()

    async def streaming_app(scope, receive, send):
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        await asyncio.wait_for(release.wait(), 10)
        await send({"type": "http.response.body", "body": b"second;", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with client_for(streaming_app) as client:
        response = await client.get("/stream")
        assert response.status == 200
        first = await asyncio.wait_for(response.content.readuntil(b";"), 10)
        assert first == b"first;"  # delivered while the app still waits
        release.set()
        assert await response.read() == b"second;"


async def test_head_and_empty_statuses_carry_no_body():
    async def app(scope, receive, send):
        await read_body(receive)
        status = 204 if scope["path"] == "/empty" else 200
        body = b"" if status == 204 else b"hello world"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode())] if body else []})
        await send({"type": "http.response.body", "body": body})

    async with client_for(app) as client:
        head = await client.head("/page")
        assert head.status == 200 and head.headers["Content-Length"] == "11"
        assert await head.read() == b""
        # The connection is still in sync: the next answer on it is whole.
        again = await client.get("/page")
        assert await again.read() == b"hello world"
        empty = await client.get("/empty")
        assert empty.status == 204 and await empty.read() == b""


async def test_redirect_passes_through_untouched():
    async def app(scope, receive, send):
        await read_body(receive)
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", b"/if/flow/default-authentication-flow/?next=%2F")]})
        await send({"type": "http.response.body", "body": b""})

    async with client_for(app) as client:
        response = await client.get("/if/user/", allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == "/if/flow/default-authentication-flow/?next=%2F"


async def test_disconnect_is_only_reported_after_the_answer():
    """Django 5 listens for http.disconnect after the body; it must not fire early (it would cancel the view)."""
    events = []

    async def app(scope, receive, send):
        await read_body(receive)
        listener = asyncio.ensure_future(receive())
        await asyncio.sleep(0.05)
        events.append(("early", listener.done()))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        events.append(("after", (await asyncio.wait_for(listener, 5))["type"]))

    async with client_for(app) as client:
        response = await client.get("/")
        assert await response.read() == b"ok"
    assert events == [("early", False), ("after", "http.disconnect")]


@pytest.mark.parametrize("behaviour", ["raise", "silent"])
async def test_app_failure_is_a_500_never_a_2xx(behaviour):
    async def app(scope, receive, send):
        await read_body(receive)
        if behaviour == "raise":
            raise RuntimeError("boom")

    async with client_for(app) as client:
        response = await client.get("/")
        assert response.status == 500


async def test_core_routes_never_reach_the_asgi_app():
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await echo_app(scope, receive, send)

    async with client_for(app) as client:
        for path in ("/-/health/live/", "/-/health/live", "/metrics", "/static/gatehouse.css"):
            assert (await client.get(path)).status == 200, path
        assert (await client.get("/static/missing.css")).status == 404
        assert (await client.get("/-/health/live/", headers={"User-Agent": "kube-probe/1.29"})).status == 200
        assert (await client.get("/anything")).status == 201
    assert reached == ["/anything"]


async def test_metrics_on_main_listener_refused_for_outside_client_through_proxy():
    async with client_for(echo_app) as client:
        assert (await client.get("/metrics")).status == 200
        refused = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert refused.status == 404


async def test_hooks_register_routes_before_the_django_catch_all(monkeypatch):
    seen = {}

    async def hub(request):
        return web.Response(text="hub")

    async def ping(request):
        return web.Response(status=204)

    def ws_setup(app):
        seen["ws"] = True
        app.router.add_get("/ws/outpost/{uuid}/", hub)

    def embedded_setup(app, config):
        seen["embedded"] = config is settings.CONFIG
        app.router.add_get("/outpost.goauthentik.io/ping", ping)

    monkeypatch.setitem(sys.modules, "core.outposts.websocket", types.SimpleNamespace(setup=ws_setup))
    monkeypatch.setitem(sys.modules, "core.outposts.embedded", types.SimpleNamespace(setup=embedded_setup))
    async with client_for(echo_app, hooks=True) as client:
        assert await (await client.get("/ws/outpost/abc/")).text() == "hub"
        assert (await client.get("/outpost.goauthentik.io/ping")).status == 204
        assert (await client.get("/outpost.goauthentik.io/other")).status == 201  # not theirs: Django
    assert seen == {"ws": True, "embedded": True}
