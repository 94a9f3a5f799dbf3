"""Caddy flavour: X-Forwarded-Host naming another application than the auth request's Host (the host Caddy
routed on) is refused (THREATS 2). Found live by tests/e2e/test_threats_live.py: with the seeds'
``trusted_proxies private_ranges`` an intranet client sets X-Forwarded-Host itself, and a session for app B
opened app A's upstream."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import outpost.proxy as proxy
from outpost.proxy.session import Session, new_session_id, sign_cookie

from .conftest import outpost_config, provider_json

A, B = "a.example.test", "b.example.test"


async def make():
    app = web.Application()
    outpost = proxy.setup(app, outpost_config())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    outpost.update([provider_json(pk=1, name="a", client_id="client-a", external_host=f"https://{A}"),
                    provider_json(pk=2, name="b", client_id="client-b", external_host=f"https://{B}")])
    b = outpost.apps.lookup(B)
    session = Session(new_session_id(), b.client_id, {"sub": "bob-sub", "preferred_username": "bob"}, "tok",
                      expires_at=time.time() + 60)
    await outpost.store.put(session)
    cookie = f"{b.cookie_name}={sign_cookie(session.id, cookie_secret=b.cookie_secret, client_id=b.client_id)}"
    return client, cookie


def fwd(host, forwarded_host, cookie):
    return {"Host": host, "X-Forwarded-Proto": "https", "X-Forwarded-Host": forwarded_host,
            "X-Forwarded-Uri": "/", "Cookie": cookie}


async def test_caddy_forwarded_host_of_another_app_refused():
    client, cookie = await make()
    try:
        r = await client.get("/outpost.goauthentik.io/auth/caddy", headers=fwd(A, B, cookie), allow_redirects=False)
        assert r.status == 400 and "X-Authentik-Username" not in r.headers
        # the same request routed on B itself is bob's (the control)
        r = await client.get("/outpost.goauthentik.io/auth/caddy", headers=fwd(B, B, cookie), allow_redirects=False)
        assert r.status == 200 and r.headers["X-Authentik-Username"] == "bob"
        # a Host that is no application (an outer proxy rewrote it): the forwarded host decides, as before
        r = await client.get("/outpost.goauthentik.io/auth/caddy", headers=fwd("caddy.internal:2019", B, cookie),
                             allow_redirects=False)
        assert r.status == 200
        # Traefik sends the outpost's own address as Host: unaffected
        r = await client.get("/outpost.goauthentik.io/auth/traefik", headers=fwd("authentik-outpost:9000", B, cookie),
                             allow_redirects=False)
        assert r.status == 200
    finally:
        await client.close()
