"""The harness's self-test: configs/ + the proxy launchers, with a stub in place of the outpost.

Through each real proxy (Traefik, Caddy, nginx): the app receives the identity headers on allow and never
a client's copy of them, an anonymous visitor is sent to log in (nginx: 401 -> error_page -> 302 to
/outpost.goauthentik.io/start?rd=...), the auth endpoint receives the forwarded headers its flavour reads,
the outpost's own paths bypass forward auth, and a websocket reaches the app. What each proxy sends is
recorded (``observe``) and printed at the end of the run.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.e2e.support.proxies import KINDS, Proxy
from tests.e2e.support.stub_auth import AUTHORIZE_URL, IDENTITY, StubAuth, start_stub_auth
from tests.e2e.support.upstream import header_values
from tests.support.server import free_port

pytestmark = pytest.mark.e2e

TIMEOUT = 10.0
# What each flavour's auth endpoint reads to learn the original request (DESIGN.md §2, Forward auth).
FORWARDED = {
    "traefik": ("X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri", "X-Forwarded-Method"),
    "caddy": ("X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri", "X-Forwarded-Method"),
    "nginx": ("X-Original-URL",),
}


@pytest.fixture(scope="module")
def stub_auth() -> Iterator[StubAuth]:
    stub = start_stub_auth()
    yield stub
    stub.stop()


@pytest.fixture(scope="module", params=KINDS)
def proxy(request, proxy_factory, stub_auth, upstream) -> Iterator[Proxy]:
    proxy = proxy_factory(request.param, outpost=stub_auth.address, upstream=upstream.address)
    yield proxy
    proxy.stop()


def get(proxy: Proxy, path: str, cookie: str | None = None, headers: dict[str, str] | None = None,
        method: str = "GET") -> httpx.Response:
    sent = {"Host": proxy.host_header} | (headers or {})
    if cookie:
        sent["Cookie"] = cookie
    return httpx.request(method, proxy.url + path, headers=sent, timeout=TIMEOUT, follow_redirects=False)


def marker_path() -> str:
    return f"/probe/{uuid.uuid4().hex}"


def auth_request_for(stub: StubAuth, kind: str, marker: str) -> dict:
    """The auth subrequest the stub saw for the request whose path contains ``marker``."""
    carrier = "X-Original-URL" if kind == "nginx" else "X-Forwarded-Uri"
    for item in stub.auth_requests(kind):
        if any(marker in v for v in header_values(item, carrier)):
            return item
    raise AssertionError(f"no {kind} auth request for {marker}; the stub saw {json.dumps(stub.seen)[-2000:]}")


def names(described: dict) -> list[str]:
    return sorted({k for k, _ in described["headers"]}, key=str.lower)


def single(described: dict, name: str) -> str | None:
    values = header_values(described, name)
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


# --- allow -------------------------------------------------------------------------------------------

def test_allow_passes_identity_headers_and_replaces_client_copies(proxy, stub_auth, observe):
    spoof = {"X-authentik-username": "evil", "x-authentik-jwt": "forged", "X-AUTHENTIK-META-APP": "x"}
    r = get(proxy, marker_path() + "?a=1", cookie="stub=ok", headers=spoof)
    assert r.status_code == 200, proxy.log_text()
    seen = r.json()
    for name, value in IDENTITY.items():
        assert single(seen, name) == value, f"{proxy.kind}: {name} at the app"
    observe(proxy.kind, "upstream request headers on allow", names(seen))


@pytest.mark.parametrize("answer", ["empty", "partial"])
def test_client_identity_headers_never_reach_the_app(proxy, answer, observe):
    """The auth answer has the headers empty (a user without e-mail) or lacks all but the username."""
    r = get(proxy, marker_path(), cookie=f"stub={answer}", headers=dict.fromkeys(IDENTITY, "evil"))
    assert r.status_code == 200, proxy.log_text()
    seen = r.json()
    at_app = {name: header_values(seen, name) for name in IDENTITY}
    assert not any("evil" in values for values in at_app.values()), f"{proxy.kind}: {at_app}"
    observe(proxy.kind, f"identity headers at the app when the auth answer is {answer!r}",
            {k: v for k, v in at_app.items() if v != [""]} or "all present and empty")


def test_set_cookie_of_an_allow_answer(proxy, observe):
    """Recorded, not asserted: whether a Set-Cookie on the auth endpoint's 200 reaches the browser."""
    r = get(proxy, marker_path(), cookie="stub=ok")
    assert r.status_code == 200
    observe(proxy.kind, "Set-Cookie of a 200 auth answer relayed to the client", r.headers.get_list("set-cookie"))


def test_authorization_and_underscore_headers(proxy, stub_auth, observe):
    """Recorded: where a client's Authorization and an X_authentik_* (underscore) header end up."""
    marker = marker_path()
    r = get(proxy, marker, cookie="stub=ok",
            headers={"Authorization": "Bearer client-token", "X_authentik_username": "underscore"})
    assert r.status_code == 200
    auth = auth_request_for(stub_auth, proxy.kind, marker)
    observe(proxy.kind, "client Authorization at auth endpoint / at app",
            [header_values(auth, "Authorization"), header_values(r.json(), "Authorization")])
    observe(proxy.kind, "client X_authentik_username at auth endpoint / at app",
            [header_values(auth, "X_authentik_username"), header_values(r.json(), "X_authentik_username")])


def test_connection_header_cannot_remove_identity_headers(proxy, observe):
    """A client's ``Connection: X-authentik-username`` (hop-by-hop) must not strip the added headers."""
    r = get(proxy, marker_path(), cookie="stub=ok",
            headers={"Connection": "keep-alive, X-authentik-username, X-authentik-groups"})
    assert r.status_code == 200
    seen = r.json()
    got = {n: header_values(seen, n) for n in ("X-authentik-username", "X-authentik-groups")}
    observe(proxy.kind, "identity headers at the app when the client sends Connection: <their names>", got)
    assert got == {"X-authentik-username": ["stub-user"], "X-authentik-groups": ["admins|users"]}


# --- anonymous ---------------------------------------------------------------------------------------

def test_anonymous_is_sent_to_log_in(proxy, observe):
    path = marker_path() + "?a=1&b=2"
    r = get(proxy, path)
    assert r.status_code == 302, f"{proxy.kind}: {r.status_code} {r.text[:200]}"
    location = r.headers["location"]
    if proxy.kind == "nginx":
        # 401 -> error_page -> @goauthentik_proxy_signin; nginx makes the Location absolute and does not
        # percent-encode rd, so the outpost sees the original query's '&' as its own separators.
        assert location == f"{proxy.external_url}/outpost.goauthentik.io/start?rd={proxy.external_url}{path}"
    else:
        assert location == AUTHORIZE_URL  # the auth answer's own 302, passed through
    cookies = r.headers.get_list("set-cookie")
    assert any(c.startswith("authentik_proxy_stub=pending") for c in cookies), f"{proxy.kind}: {cookies}"
    observe(proxy.kind, "anonymous: Location", location)
    observe(proxy.kind, "anonymous: Set-Cookie relayed from the 302/401 auth answer (stub sent 2)", cookies)


def test_denied_user_gets_403(proxy, observe):
    r = get(proxy, marker_path(), cookie="stub=deny")
    assert r.status_code == 403, f"{proxy.kind}: {r.status_code}"
    assert r.headers.get("x-upstream") is None
    observe(proxy.kind, "auth answer 403 -> client gets", [r.status_code, r.text[:40]])


PREFLIGHT = {"Origin": "http://other.test", "Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize(("method", "client"), [("GET", {"Accept": "application/json"}),
                                                ("GET", {"X-Requested-With": "XMLHttpRequest"}),
                                                ("OPTIONS", PREFLIGHT)], ids=["json", "xhr", "preflight"])
def test_clients_that_cannot_follow_a_redirect_get_401(proxy, method, client, observe):
    """THREATS.md #10: through nginx too, whose error_page would otherwise turn the 401 into a 302."""
    r = get(proxy, marker_path(), headers=client, method=method)
    assert r.status_code == 401, f"{proxy.kind}: {r.status_code} {r.headers.get('location')}"
    assert r.headers.get("x-upstream") is None
    observe(proxy.kind, f"auth answer 401 ({method} {next(iter(client))}) -> client gets",
            [r.status_code, r.headers.get("content-type")])


def test_auth_endpoint_sees_the_forwarded_headers(proxy, stub_auth, observe):
    path = marker_path() + "?x=1&y=%2F"
    get(proxy, path)
    auth = auth_request_for(stub_auth, proxy.kind, path)
    got = {name: single(auth, name) for name in FORWARDED[proxy.kind]}
    if proxy.kind == "nginx":
        assert got == {"X-Original-URL": f"{proxy.external_url}{path}"}
    else:
        assert got == {"X-Forwarded-Proto": "http", "X-Forwarded-Host": proxy.host_header,
                       "X-Forwarded-Uri": path, "X-Forwarded-Method": "GET"}
    observe(proxy.kind, "auth endpoint: request line and Host", [auth["method"], auth["path"],
                                                                 single(auth, "Host")])
    observe(proxy.kind, "auth endpoint: header names received", names(auth))


def test_client_cannot_forge_what_the_auth_endpoint_reads(proxy, stub_auth, observe):
    """The fields each flavour reads come from the proxy, not the client. Recorded: what else got through."""
    path = marker_path()
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test", "X-Forwarded-Uri": "/evil",
              "X-Forwarded-Method": "DELETE", "X-Original-URL": "http://evil.test/evil",
              "X-Original-URI": "/evil"}
    get(proxy, path, headers=forged)
    auth = auth_request_for(stub_auth, proxy.kind, path)
    if proxy.kind == "nginx":
        assert single(auth, "X-Original-URL") == f"{proxy.external_url}{path}"
    else:
        assert single(auth, "X-Forwarded-Uri") == path
        assert single(auth, "X-Forwarded-Method") == "GET"
    observe(proxy.kind, "client-forged X-Forwarded-*/X-Original-* arriving at the auth endpoint (client 127.0.0.1)",
            {n: v for n, v in auth["headers"] if "evil" in v or v in ("https", "DELETE")})


# --- outpost paths -----------------------------------------------------------------------------------

def test_outpost_paths_go_to_the_outpost_without_auth(proxy, stub_auth, observe):
    query = f"rd={uuid.uuid4().hex}&X-authentik-auth-callback=true"
    r = get(proxy, "/outpost.goauthentik.io/callback?" + query)
    assert r.status_code == 200, f"{proxy.kind}: {r.status_code} {r.text[:200]}"
    seen = r.json()
    assert (seen["path"], seen["query"]) == ("/outpost.goauthentik.io/callback", query)
    assert single(seen, "Host") == proxy.host_header
    assert not any(item["flavour"] == proxy.kind and query in json.dumps(item) for item in stub_auth.seen)
    observe(proxy.kind, "outpost path (/outpost.goauthentik.io/callback): headers at the outpost", names(seen))


# --- websocket ---------------------------------------------------------------------------------------

def _ws(proxy: Proxy, cookie: str | None):
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    headers = {"Cookie": cookie} if cookie else {}
    return ws_connect(f"ws://{proxy.host_header}/ws", sock=sock, additional_headers=headers,
                      open_timeout=TIMEOUT, close_timeout=TIMEOUT)


def test_websocket_reaches_the_app_with_identity(proxy, observe):
    with _ws(proxy, "stub=ok") as ws:
        upgrade = json.loads(ws.recv(timeout=TIMEOUT))
        assert header_values(upgrade, "X-authentik-username") == ["stub-user"]
        ws.send("ping through " + proxy.kind)
        assert ws.recv(timeout=TIMEOUT) == "ping through " + proxy.kind
    observe(proxy.kind, "websocket upgrade request headers at the app", names(upgrade))


def test_anonymous_websocket_is_refused(proxy):
    # A raw upgrade request: the websockets client would follow the 302 and fail on its http:// URL.
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    r = get(proxy, "/ws", headers=upgrade)
    assert r.status_code == 302, f"{proxy.kind}: {r.status_code}"
    assert "upgrade" not in r.headers.get("connection", "").lower()


# --- outpost down ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_outpost_unreachable_fails_closed(kind, proxy_factory, upstream, observe):
    """Nothing listens on the outpost's port: the proxy answers an error, never the app."""
    proxy = proxy_factory(kind, outpost=f"127.0.0.1:{free_port()}", upstream=upstream.address)
    try:
        r = get(proxy, marker_path(), cookie="stub=ok")
        assert r.status_code >= 500, f"{kind}: {r.status_code} {r.text[:200]}"
        assert r.headers.get("x-upstream") is None
        observe(kind, "status when the outpost is unreachable", r.status_code)
    finally:
        proxy.stop()
