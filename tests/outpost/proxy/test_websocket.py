"""Proxy mode websockets (RFC 6455) through real aiohttp servers: frames both ways, identity headers on the
upstream handshake, client-sent identity headers stripped, close codes relayed both ways, 302/401 before
any upgrade when unauthenticated, 502 when the upstream refuses."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

import outpost.proxy as proxy
from outpost.proxy.reverse import add_catch_all
from outpost.proxy.session import Session, new_session_id, sign_cookie

from .conftest import outpost_config, provider_json

HOST = "ext.t.goauthentik.io"


@pytest.fixture
async def env():
    seen = {}

    async def ws_echo(request):
        seen["headers"] = dict(request.headers)
        ws = web.WebSocketResponse(protocols=("chat.v1",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                if message.data == "close-4001":
                    await ws.close(code=4001, message=b"bye")
                    break
                await ws.send_str("echo:" + message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        seen["close_code"] = ws.close_code
        return ws

    async def refuse(request):
        return web.Response(status=403, text="no websocket for you")

    upstream_app = web.Application()
    upstream_app.router.add_get("/ws", ws_echo)
    upstream_app.router.add_get("/refuse", refuse)
    upstream = TestServer(upstream_app, host="127.0.0.1")
    await upstream.start_server()
    app = web.Application()
    outpost = proxy.setup(app, outpost_config())
    add_catch_all(app)
    server = TestServer(app, host="127.0.0.1")
    client = TestClient(server)
    await client.start_server()
    outpost.update([provider_json(mode="proxy", internal_host=str(upstream.make_url("/")).rstrip("/"))],
                   outpost_name="test-outpost")
    yield client, outpost, seen
    await client.close()
    await upstream.close()


async def cookie_for(outpost, sub="u1"):
    app = outpost.apps.lookup(HOST)
    s = Session(new_session_id(), app.client_id, {"sub": sub, "preferred_username": "alice"}, "tok",
                expires_at=time.time() + 60)
    await outpost.store.put(s)
    return f"{app.cookie_name}={sign_cookie(s.id, cookie_secret=app.cookie_secret, client_id=app.client_id)}"


async def test_frames_both_ways_with_identity_headers(env):
    client, outpost, seen = env
    cookie = await cookie_for(outpost)
    async with client.ws_connect("/ws", headers={"Host": HOST, "Cookie": cookie, "X-Authentik-Username": "root",
                                                 "X_AUTHENTIK_UID": "0"}, protocols=("chat.v1",)) as ws:
        assert ws.protocol == "chat.v1"
        await ws.send_str("hi")
        assert (await ws.receive(timeout=5)).data == "echo:hi"
        await ws.send_bytes(b"abc")
        assert (await ws.receive(timeout=5)).data == b"cba"
    h = seen["headers"]
    assert h["X-Authentik-Username"] == "alice" and h["X-Authentik-Uid"] == "u1"
    assert not [k for k in h if "_" in k]
    assert h["X-Forwarded-Host"] == HOST


async def test_client_close_code_relayed_to_upstream(env):
    client, outpost, seen = env
    cookie = await cookie_for(outpost)
    ws = await client.ws_connect("/ws", headers={"Host": HOST, "Cookie": cookie})
    await ws.send_str("x")
    await ws.receive(timeout=5)
    await ws.close(code=4002, message=b"done")
    for _ in range(100):  # bounded wait for the upstream handler to finish
        if "close_code" in seen:
            break
        await asyncio.sleep(0.05)
    assert seen["close_code"] == 4002


async def test_upstream_close_code_relayed_to_client(env):
    client, outpost, _ = env
    cookie = await cookie_for(outpost)
    ws = await client.ws_connect("/ws", headers={"Host": HOST, "Cookie": cookie})
    await ws.send_str("close-4001")
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.CLOSE and message.data == 4001
    await ws.close()


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def test_unauthenticated_websocket_never_upgraded(env):
    client, _, seen = env
    r = await client.get("/ws", headers={"Host": HOST, **UPGRADE}, allow_redirects=False)
    assert r.status == 302 and "/outpost.goauthentik.io/start" in r.headers["Location"]
    r = await client.get("/ws", headers={"Host": HOST, "Authorization": "Bearer x", **UPGRADE},
                         allow_redirects=False)
    assert r.status in (401, 502)  # refused credentials (or the unreachable IdP): never 101
    assert "headers" not in seen


async def test_denied_user_websocket_403(env):
    client, outpost, seen = env
    outpost.update([provider_json(mode="proxy", internal_host=outpost.apps.configs[0].internal_host,
                                  access={"default": "allow", "deny_subjects": ["u1"]})])
    cookie = await cookie_for(outpost)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws", headers={"Host": HOST, "Cookie": cookie})
    assert info.value.status == 403 and "headers" not in seen


async def test_upstream_refuses_502(env):
    client, outpost, _ = env
    cookie = await cookie_for(outpost)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/refuse", headers={"Host": HOST, "Cookie": cookie})
    assert info.value.status == 502
