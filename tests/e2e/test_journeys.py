"""Forward auth with the REAL core and the REAL embedded outpost behind real Traefik, Caddy and nginx.

One ``ak server`` per module (its embedded outpost serves /outpost.goauthentik.io/* on the core's port);
per proxy kind one proxy process and one application (a proxy provider in forward_single mode whose
external host is the proxy's ``http://app.test:<port>``), bound to the group ``staff``. A "browser"
(tests/e2e/support/browser.py) logs in through the flow executor API (tests/e2e/support/stack.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.support.browser import Browser
from tests.e2e.support.proxies import KINDS, Proxy
from tests.e2e.support.stack import App, Stack, login, until
from tests.e2e.support.upstream import header_values

pytestmark = pytest.mark.e2e

GROUP = "staff"
PASSWORD = "Correct-Horse-e2e-7!"  # noqa: S105 - a test password
REVOKED_WITHIN = 5.0  # the contract is 1 s; the bound only keeps a broken build from hanging
IDENTITY = ("X-authentik-username", "X-authentik-groups", "X-authentik-email", "X-authentik-name",
            "X-authentik-uid")


@dataclass
class Site:
    kind: str
    proxy: Proxy
    app: App

    def url(self, path: str = "/") -> str:
        return self.proxy.external_url + path


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, dict]:
    return {
        "alice": stack.user("alice", PASSWORD, [GROUP], name="Alice Liddell", email="alice@example.test"),
        "bob": stack.user("bob", PASSWORD, [], name="Bob Outsider"),
    }


@pytest.fixture(scope="module", params=KINDS)
def site(request, stack: Stack, proxy_factory, upstream) -> Iterator[Site]:
    kind = request.param
    proxy = proxy_factory(kind, outpost=stack.outpost_address, upstream=upstream.address)
    app = stack.add_app(f"app-{kind}", proxy.external_url, group=GROUP)
    yield Site(kind, proxy, app)
    proxy.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


def single(described: dict, name: str) -> str | None:
    values = header_values(described, name)
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


def debug(site: Site, stack: Stack, browser: Browser) -> str:
    return f"hops:\n{browser.trail()}\n--- {site.kind} ---\n{site.proxy.log_text()[-3000:]}\n{stack.logs()}"


def test_login_passes_identity_to_the_app(site, stack, people, browser, observe):
    result = login(browser, site.url("/private/page?x=1"), "alice", PASSWORD)
    assert result.first.status_code == 302, debug(site, stack, browser)
    r = result.response
    assert r.status_code == 200 and r.headers.get("x-upstream") == "echo", \
        f"{r.status_code} {r.text[:300]}\n{debug(site, stack, browser)}"
    seen = r.json()
    assert (seen["path"], seen["query"]) == ("/private/page", "x=1")
    alice = people["alice"]
    got = {name: single(seen, name) for name in IDENTITY}
    assert got["X-authentik-username"] == "alice"
    assert got["X-authentik-groups"] == GROUP
    assert got["X-authentik-email"] == "alice@example.test"
    assert got["X-authentik-name"] == "Alice Liddell"
    assert got["X-authentik-uid"] == alice["uid"], alice
    observe(site.kind, "real outpost: login hops (status host path)",
            [f"{h.status} {urlsplit(h.url).netloc.split(':')[0]} {urlsplit(h.url).path}" for h in browser.hops])
