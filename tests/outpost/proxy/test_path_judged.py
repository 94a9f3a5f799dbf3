"""Unauthenticated paths are decided on the path the upstream will receive (THREATS 4; issue 8 item 6).

With ``skip_path_regex ^/public/.*$`` an attacker sends paths that read as ``/public/...`` once decoded or
resolved, while the upstream (which gets the raw path) or a Java server reads a private one: each gets the
login (302 / 401) in every flavour and in proxy mode, never the upstream. Proxy mode forwards exactly the raw
path it judged (no re-encoding, no dot-segment resolution by the HTTP client). Requests are sent with
``encoded=True`` so that nothing on the test side normalises them."""

from __future__ import annotations

import asyncio
import time

import pytest
from yarl import URL

from outpost.proxy.session import Session, new_session_id, sign_cookie

from .conftest import provider_json, start_echo, start_outpost

HOST = "ext.t.goauthentik.io"
PROXIED = "proxied.example.com"
SKIP = "^/public/.*$"
ATTACKS = ["/admin/..%2Fpublic/x", "/admin/..%2fpublic/x", "/admin/%2e%2e%2Fpublic/x", "/admin/../public/x",
           "/admin/%2e%2e/public/x", "/public/..;/admin/x", "/public/..%3B/admin/x", "/public/x;jsessionid=1",
           "/public%2F..%2Fadmin", "/public/x%5C..%5Cadmin", "//public/x", "/public//x", "/public/./x"]


@pytest.fixture
async def env():
    seen: list[str] = []
    upstream = await start_echo(seen)
    client, outpost = await start_outpost()
    outpost.update([
        provider_json(skip_path_regex=SKIP),
        provider_json(pk=2, name="proxied", client_id="proxied-client", mode="proxy", skip_path_regex=SKIP,
                      external_host=f"https://{PROXIED}", internal_host=str(upstream.make_url("/")).rstrip("/")),
    ])
    yield client, outpost, seen
    await client.close()
    await upstream.close()


async def get(client, target, headers):
    url = URL(str(client.make_url("/")).rstrip("/") + target, encoded=True)
    return await client.session.get(url, headers=headers, allow_redirects=False)


FLAVOURS = {
    "traefik": lambda target: ("/outpost.goauthentik.io/auth/traefik",
                               {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST, "X-Forwarded-Uri": target}),
    "caddy": lambda target: ("/outpost.goauthentik.io/auth/caddy",
                             {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST, "X-Forwarded-Uri": target}),
    "nginx": lambda target: ("/outpost.goauthentik.io/auth/nginx", {"X-Original-URL": f"https://{HOST}{target}"}),
    "envoy": lambda target: ("/outpost.goauthentik.io/auth/envoy" + target, {"Host": HOST}),
}


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
async def test_forward_auth_gives_the_login_for_every_confusing_path(env, flavour):
    client, _, _ = env
    for attack in ATTACKS:
        path, headers = FLAVOURS[flavour](attack)
        r = await get(client, path, headers)
        assert r.status in (302, 401), f"{flavour} {attack}: {r.status}"
    path, headers = FLAVOURS[flavour]("/public/x")  # the control: the public path itself is served
    assert (await get(client, path, headers)).status == 200


async def test_proxy_mode_gives_the_login_and_never_reaches_the_upstream(env):
    client, _, seen = env
    for attack in ATTACKS:
        r = await get(client, attack, {"Host": PROXIED})
        assert r.status == 302 and "/outpost.goauthentik.io/start" in r.headers["Location"], (attack, r.status)
    assert seen == []


@pytest.mark.parametrize("target", ["/public/x", "/%70ublic/x", "/public/caf%C3%A9?q=%2F..%2F", "/public/a%21b"])
async def test_proxy_mode_forwards_exactly_the_judged_path(env, target):
    client, _, seen = env
    r = await get(client, target, {"Host": PROXIED})
    assert r.status == 200 and seen == [target], (r.status, seen)


async def test_proxy_mode_keeps_a_signed_in_users_raw_path(env):
    """Signed in, any path goes through -- as sent: the HTTP client does not resolve ``%2e%2e`` or decode
    ``%3B`` on the way (the same bytes the reverse proxies pass on in forward-auth mode)."""
    client, outpost, seen = env
    app = outpost.apps.lookup(PROXIED)
    session = Session(new_session_id(), app.client_id, {"sub": "u", "preferred_username": "alice"}, "tok",
                      expires_at=time.time() + 60)
    await outpost.store.put(session)
    cookie = f"{app.cookie_name}={sign_cookie(session.id, cookie_secret=app.cookie_secret, client_id=app.client_id)}"
    for target in ("/public/%2e%2e/admin", "/x%3By", "/a/../b", "/%7Eu"):
        r = await get(client, target, {"Host": PROXIED, "Cookie": cookie})
        assert r.status == 200 and seen[-1] == target, (target, seen)


async def test_proxy_mode_refuses_a_target_it_cannot_forward_as_judged(env):
    """An absolute-form request target (RFC 9112 §3.2.2) would make the upstream URL ambiguous: 400, naming
    the target, never the upstream."""
    client, _, seen = env
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET http://{PROXIED}/public/x HTTP/1.1\r\nHost: {PROXIED}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"origin-form" in answer, answer[:300]
    assert seen == []


async def test_proxy_mode_passes_any_method_token(env):
    """WebDAV methods (RFC 4918) go upstream on a public path as before (no method list of our own)."""
    client, _, seen = env
    url = URL(str(client.make_url("/public/dav")), encoded=True)
    for method in ("PROPFIND", "MKCOL", "REPORT"):
        r = await client.session.request(method, url, headers={"Host": PROXIED}, allow_redirects=False)
        assert r.status == 200, (method, r.status)
    assert seen == ["/public/dav"] * 3
