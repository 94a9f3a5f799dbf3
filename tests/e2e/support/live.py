"""Helpers for the live attack, store and revocation modules (test_threats_live, test_stores, test_revocation):
requests with byte-exact targets and headers, "did the app see it?" checks, and bounded refusal timing.

    r = raw(proxy.port, "GET", "/public/../private", [("Host", proxy.host_header), ("Cookie", jar)])
    assert not reached(r)                      # the echo upstream never answered
    delay = refusal_delay(lambda: browser.get(url), started)   # seconds until the first refusal

``raw`` uses http.client so that nothing normalises the request target (``..``, ``//``, ``%2e``) or merges,
re-cases or drops headers (duplicates and ``_`` spellings go out as written).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from tests.e2e.support.browser import Browser
from tests.e2e.support.proxies import Proxy
from tests.e2e.support.stack import App, Stack, login
from tests.e2e.support.upstream import header_values

IDENTITY = ("X-authentik-username", "X-authentik-groups", "X-authentik-email", "X-authentik-name",
            "X-authentik-uid", "X-authentik-jwt")
REFUSED = (302, 401, 403)
POLL_STEP = 0.02
POLL_MAX = 5.0
RAW_TIMEOUT = 15.0


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def status_code(self) -> int:  # same spelling as httpx, so checks take either
        return self.status

    def json(self) -> dict:
        import json

        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} location={self.header('location')!r} body={self.body[:200]!r}"


def raw(port: int, method: str, target: str, headers: Iterable[tuple[str, str]], *, body: bytes | None = None,
        host: str = "127.0.0.1") -> RawResponse:
    """One HTTP/1.1 request to ``host:port`` with exactly this request target and these headers (in order,
    duplicates kept, no Host added: put it in ``headers``)."""
    conn = http.client.HTTPConnection(host, port, timeout=RAW_TIMEOUT)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return RawResponse(response.status, list(response.getheaders()), response.read())
    finally:
        conn.close()


def reached(response: httpx.Response | RawResponse) -> bool:
    """Did the echo upstream answer (its ``X-Upstream: echo``)? The proxies relay its answer unchanged."""
    value = response.header("x-upstream") if isinstance(response, RawResponse) else response.headers.get("x-upstream")
    return value == "echo"


def identity_seen(response: httpx.Response | RawResponse) -> dict[str, list[str]]:
    """The identity headers the upstream received (empty lists when it was not reached)."""
    if not reached(response):
        return {name: [] for name in IDENTITY}
    seen = response.json()
    return {name: header_values(seen, name) for name in IDENTITY}


def fails_closed(response: httpx.Response | RawResponse, *, allowed_user: str | None = None) -> str | None:
    """None when the answer is a refusal (the upstream not reached, status 3xx/4xx/5xx), or the upstream saw
    no identity other than ``allowed_user``'s; else a description of what got through."""
    if not reached(response):
        if 200 <= response.status_code < 300:
            return f"{response.status_code} without the upstream: a 2xx from the proxy/outpost itself"
        return None
    names = identity_seen(response)["X-authentik-username"]
    if not names or names == [allowed_user]:
        return None
    return f"upstream reached with identity {names} (status {response.status_code})"


def cookie_header(app: App, value: str) -> tuple[str, str]:
    return ("Cookie", f"{app.cookie_name}={value}")


@dataclass
class Site:
    """One real proxy in front of one application served by the stack's outpost."""

    kind: str
    proxy: Proxy
    app: App

    def url(self, path: str = "/") -> str:
        return self.proxy.external_url + path

    def get(self, target: str, headers: Iterable[tuple[str, str]] = (), method: str = "GET") -> RawResponse:
        return raw(self.proxy.port, method, target, [("Host", self.proxy.host_header), *headers])


def add_site(stack: Stack, proxy_factory, upstream, kind: str, name: str, *, host: str = "app.test",
             group: str | None = None, **provider_fields) -> Site:
    """Start proxy ``kind`` for ``host`` in front of the echo upstream and an application for it."""
    proxy = proxy_factory(kind, outpost=stack.outpost_address, upstream=upstream.address, app_host=host)
    app = stack.add_app(name, proxy.external_url, group=group, **provider_fields)
    return Site(kind, proxy, app)


def sign_in(stack: Stack, site: Site, browser: Browser, username: str, password: str, path: str = "/") -> str:
    """Log in at ``site`` and return the application's session cookie value (asserting the app answered)."""
    result = login(browser, site.url(path), username, password)
    r = result.response
    assert r.status_code == 200 and reached(r), \
        f"{site.kind}: login ended with {r.status_code} {r.text[:300]}\n{browser.trail()}\n{stack.logs()}"
    value = browser.cookie(site.app.cookie_name)
    assert value, f"{site.kind}: no {site.app.cookie_name} cookie after login"
    return value


def refused(response: httpx.Response | RawResponse) -> bool:
    """A refusal of an old session: login redirect, 401 or 403, and the upstream not reached."""
    return response.status_code in REFUSED and not reached(response)


def refusal_delay(request: Callable[[], httpx.Response | RawResponse], started: float, *,
                  step: float = POLL_STEP, limit: float = POLL_MAX) -> tuple[float, httpx.Response | RawResponse]:
    """Poll ``request`` every ``step`` s until it is refused; (seconds from ``started`` (a time.monotonic())
    to the moment the first refusal arrived, that answer). AssertionError after ``limit`` s, or at once on an
    answer that is neither the app's 200 nor a refusal (a 5xx is a failure, not a revocation)."""
    deadline = started + limit
    while True:
        response = request()
        now = time.monotonic()
        if refused(response):
            return now - started, response
        ok = response.status_code == 200 and reached(response)
        assert ok, f"neither allowed nor refused: {response.status_code} {getattr(response, 'text', '')[:200]}"
        if now >= deadline:
            raise AssertionError(f"still allowed {now - started:.3f} s after the revocation (bounded poll "
                                 f"{limit} s)")
        time.sleep(step)
