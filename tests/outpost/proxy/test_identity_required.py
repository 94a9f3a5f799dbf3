"""Never a 2xx without identity (DESIGN.md §2, THREATS 1; issue 8 item 2): a session or header credential whose
claims carry no username answers 500 with one log line naming the provider and the missing scope, in every
forward-auth flavour and in proxy mode; the login callback refuses to store such a session. An
unauthenticated path still needs no identity."""

from __future__ import annotations

import logging
import time

import pytest

from outpost.proxy.pipeline import Identity, Request, Verdict, decide
from outpost.proxy.session import Session, new_session_id, sign_cookie
from protocols import forward as fw
from protocols.forward import RequestClass

from .conftest import provider_json, start_echo, start_outpost
from .fake_idp import FakeIdP

HOST = "ext.t.goauthentik.io"
NOW = 1_000_000.0
# What a provider without the default scope mappings asks for (a blueprint written without them, before the
# core kept them): no "profile", so the core's tokens carry no preferred_username.
NO_PROFILE = ["openid"]


def test_decide_refuses_an_identity_without_username():
    target = fw.Target("https", fw.Host("app.example.com"), "/")
    for flavour in ("traefik", "caddy", "nginx", "envoy", "proxy"):
        nameless = Request(flavour, target, RequestClass.NAVIGATION, False, Identity("c", "sub", NOW + 60, ""), NOW)
        assert decide(nameless, client_id="c", access=None) is Verdict.IDENTITY_INCOMPLETE, flavour
        skip = Request(flavour, target, RequestClass.NAVIGATION, True, Identity("c", "sub", NOW + 60, ""), NOW)
        assert decide(skip, client_id="c", access=None) is Verdict.ALLOW_UNAUTHENTICATED_PATH, flavour
        named = Request(flavour, target, RequestClass.NAVIGATION, False, Identity("c", "sub", NOW + 60, "a"), NOW)
        assert decide(named, client_id="c", access=None) is Verdict.ALLOW, flavour


@pytest.fixture
async def env():
    upstream = await start_echo()
    idp = await FakeIdP(alg="RS256").start()
    client, outpost = await start_outpost()
    common = {"oidc_configuration": idp.oidc_configuration(), "client_id": idp.client_id,
              "client_secret": idp.client_secret, "scopes_to_request": NO_PROFILE}
    outpost.update([provider_json(name="nameless-fwd", **common),
                    provider_json(pk=2, name="nameless-proxy", mode="proxy", external_host="https://proxied.example.com",
                                  internal_host=str(upstream.make_url("/")).rstrip("/"),
                                  **{**common, "client_id": "proxy-client"})], outpost_name="test-outpost")
    yield idp, client, outpost
    await client.close()
    await idp.close()
    await upstream.close()


async def nameless_cookie(outpost, host):
    app = outpost.apps.lookup(host)
    session = Session(new_session_id(), app.client_id, {"sub": "user-sub", "email": "", "groups": []}, "tok",
                      expires_at=time.time() + 60)
    await outpost.store.put(session)
    return f"{app.cookie_name}={sign_cookie(session.id, cookie_secret=app.cookie_secret, client_id=app.client_id)}"


def refused_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "preferred_username" in
            r.getMessage()]


@pytest.mark.parametrize("flavour,headers", [
    ("traefik", {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST, "X-Forwarded-Uri": "/page"}),
    ("caddy", {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST, "X-Forwarded-Uri": "/page"}),
    ("nginx", {"X-Original-URL": f"https://{HOST}/page"}),
    ("envoy", {"Host": HOST}),
])
async def test_forward_auth_answers_500_not_200(env, flavour, headers, caplog):
    _, client, outpost = env
    cookie = await nameless_cookie(outpost, HOST)
    path = "/outpost.goauthentik.io/auth/envoy/page" if flavour == "envoy" else f"/outpost.goauthentik.io/auth/{flavour}"
    with caplog.at_level(logging.ERROR, logger="gatehouse.outpost.proxy"):
        r = await client.get(path, headers={**headers, "Cookie": cookie}, allow_redirects=False)
    assert r.status == 500, (r.status, dict(r.headers))
    assert "X-Authentik-Username" not in r.headers
    lines = refused_lines(caplog)
    assert len(lines) == 1 and "'nameless-fwd'" in lines[0] and "'profile'" in lines[0], lines
    # an unauthenticated path needs no identity: still served
    skip = {**headers, "X-Forwarded-Uri": "/skip/x", "X-Original-URL": f"https://{HOST}/skip/x"}
    path = "/outpost.goauthentik.io/auth/envoy/skip/x" if flavour == "envoy" else path
    r = await client.get(path, headers={**skip, "Cookie": cookie}, allow_redirects=False)
    assert r.status == 200 and r.headers["X-Authentik-Username"] == ""


async def test_proxy_mode_answers_500_and_never_reaches_the_upstream(env, caplog):
    _, client, outpost = env
    cookie = await nameless_cookie(outpost, "proxied.example.com")
    with caplog.at_level(logging.ERROR, logger="gatehouse.outpost.proxy"):
        r = await client.get("/page", headers={"Host": "proxied.example.com", "Cookie": cookie},
                             allow_redirects=False)
    assert r.status == 500 and "path" not in await r.text()
    lines = refused_lines(caplog)
    assert len(lines) == 1 and "'nameless-proxy'" in lines[0] and "'profile'" in lines[0], lines


async def test_callback_refuses_to_store_a_nameless_login(env, caplog):
    """The core's tokens for a provider without the profile scope: the login stops at the callback with 500
    (nothing stored, no session cookie), so once the provider is fixed the next attempt is a fresh login."""
    idp, client, outpost = env
    app = outpost.apps.lookup(HOST)
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST}
    r = await client.get("/outpost.goauthentik.io/auth/traefik", headers={**fwd, "X-Forwarded-Uri": "/"},
                         allow_redirects=False)
    assert r.status == 302
    pre = r.cookies[app.cookie_name].value
    code, q = idp.authorize(r.headers["Location"], preferred_username=None)
    cb = f"/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code={code}&state={q['state']}"
    with caplog.at_level(logging.ERROR, logger="gatehouse.outpost.proxy"):
        r = await client.get("/outpost.goauthentik.io/auth/traefik", allow_redirects=False, headers={
            **fwd, "X-Forwarded-Uri": cb, "Cookie": f"{app.cookie_name}={pre}"})
    assert r.status == 500 and app.cookie_name not in r.cookies
    assert len(refused_lines(caplog)) == 1
    assert len(outpost.store) == 0  # the default MemoryStore


async def test_bearer_without_username_is_500(env):
    idp, client, outpost = env
    token = idp.issue_bearer(preferred_username="")
    r = await client.get("/outpost.goauthentik.io/auth/traefik", allow_redirects=False, headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST, "X-Forwarded-Uri": "/",
        "Authorization": f"Bearer {token}"})
    assert r.status == 500 and "X-Authentik-Username" not in r.headers
