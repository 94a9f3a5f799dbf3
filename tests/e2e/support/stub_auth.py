"""A stand-in for the proxy outpost, for the harness's own tests ONLY.

It proves that the configs in configs/ and the launchers in proxies.py work, independently of the real
outpost. The real outpost tests replace it with the real outpost and reuse everything else.

Behaviour (authentik's forward auth contract, DESIGN.md §2, reduced to a cookie check):
* ``/outpost.goauthentik.io/auth/{traefik,caddy,nginx}``:
  cookie ``stub=ok``    -> 200 with every identity header (non-empty values) and two ``Set-Cookie``;
  cookie ``stub=empty`` -> 200 with every identity header present but empty (a user without e-mail...);
  cookie ``stub=partial`` -> 200 with only X-authentik-username (how a proxy treats a missing header);
  cookie ``stub=deny``  -> 403 "denied" (a user the application's policies refuse);
  ``Accept: application/json``, ``X-Requested-With`` or an OPTIONS request (the forwarded method) without
  a cookie -> 401 JSON (clients that cannot follow a redirect);
  otherwise             -> Traefik/Caddy 302 to ``AUTHORIZE_URL``, nginx 401, each with two ``Set-Cookie``.
* ``/outpost.goauthentik.io/ping`` -> 204 (as authentik's outpost); any other ``/outpost.goauthentik.io/*``
  (start, callback...) -> 200 JSON of the request.
Every request is recorded (``StubAuth.seen``) with its headers as they came on the wire.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from aiohttp import web

from tests.e2e.support.threaded import ThreadedApp
from tests.e2e.support.upstream import describe

AUTHORIZE_URL = "http://core.test/application/o/authorize/?client_id=stub"
IDENTITY = {
    "X-authentik-username": "stub-user",
    "X-authentik-groups": "admins|users",
    "X-authentik-entitlements": "read|write",
    "X-authentik-email": "stub@example.test",
    "X-authentik-name": "Stub User",
    "X-authentik-uid": "0123456789abcdef",
    "X-authentik-jwt": "eyJhbGciOiJIUzI1NiJ9.e30.stub",
    "X-authentik-meta-jwks": "http://core.test/application/o/stub/jwks/",
    "X-authentik-meta-outpost": "stub-outpost",
    "X-authentik-meta-provider": "stub-provider",
    "X-authentik-meta-app": "stub-app",
    "X-authentik-meta-version": "goauthentik.io/outpost/stub",
}
FLAVOURS = ("traefik", "caddy", "nginx")


@dataclass
class Record:
    """What the stub received: a shared, lock-protected list (the server runs in another thread)."""

    items: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: dict) -> None:
        with self.lock:
            self.items.append(item)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.items)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


RECORD = web.AppKey("record", Record)


def _cookie(request: web.Request) -> str:
    return request.cookies.get("stub", "")


async def auth(request: web.Request) -> web.StreamResponse:
    flavour = request.match_info["flavour"]
    item = describe(request) | {"flavour": flavour}
    request.app[RECORD].add(item)
    verdict = _cookie(request)
    if verdict in ("ok", "empty", "partial"):
        headers = {
            "ok": IDENTITY,
            "empty": dict.fromkeys(IDENTITY, ""),
            "partial": {"X-authentik-username": IDENTITY["X-authentik-username"]},
        }[verdict]
        resp = web.Response(status=200, headers=dict(headers))
        resp.headers.add("Set-Cookie", "stub_seen=allow; Path=/; HttpOnly")
        resp.headers.add("Set-Cookie", "stub_second=1; Path=/")
        return resp
    if verdict == "deny":
        return web.Response(status=403, text="denied")
    if ("application/json" in request.headers.get("Accept", "") or "X-Requested-With" in request.headers
            or request.headers.get("X-Forwarded-Method") == "OPTIONS" or request.method == "OPTIONS"):
        return web.json_response({"detail": "authentication required"}, status=401)
    if flavour == "nginx":
        resp = web.Response(status=401, text="unauthorized request")
    else:
        resp = web.Response(status=302, headers={"Location": AUTHORIZE_URL})
    resp.headers.add("Set-Cookie", "authentik_proxy_stub=pending; Path=/; HttpOnly; SameSite=Lax")
    resp.headers.add("Set-Cookie", "stub_second=1; Path=/")
    return resp


async def ping(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def other(request: web.Request) -> web.Response:
    item = describe(request) | {"flavour": None}
    request.app[RECORD].add(item)
    return web.json_response(item)


def create_app(record: Record) -> web.Application:
    app = web.Application()
    app[RECORD] = record
    app.router.add_route("*", "/outpost.goauthentik.io/auth/{flavour:traefik|caddy|nginx}", auth)
    app.router.add_route("*", "/outpost.goauthentik.io/ping", ping)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


class StubAuth(ThreadedApp):
    def __init__(self) -> None:
        self.record = Record()
        super().__init__(create_app(self.record), "e2e-stub-auth")

    @property
    def seen(self) -> list[dict]:
        return self.record.snapshot()

    def auth_requests(self, flavour: str) -> list[dict]:
        return [r for r in self.seen if r["flavour"] == flavour]


def start_stub_auth() -> StubAuth:
    stub = StubAuth()
    stub.start()
    return stub
