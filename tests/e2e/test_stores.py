"""The login journey with each session store, and sessions that survive an outpost restart (issue 3 item 7).

Parametrised over store (memory with its file snapshot, Redis) x outpost (embedded in ``ak server``, standalone
``ak outpost proxy``): one core (and outpost) per combination, real nginx and Caddy in front of the echo
upstream. After login the upstream sees the identity headers; then the outpost process restarts (standalone:
``ak outpost proxy`` stops and starts; embedded: the whole ``ak server`` restarts) and the SAME cookie is
still accepted without a new login (memory: loaded from the snapshot written at shutdown; Redis: still in
Redis). A session signed out before the restart stays signed out after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.support.browser import Browser
from tests.e2e.support.live import Site, add_site, identity_seen, reached, sign_in
from tests.e2e.support.stack import STORES, Stack, until

pytestmark = pytest.mark.e2e

GROUP = "stored"
PASSWORD = "Correct-Horse-stores-9!"  # noqa: S105 - a test password
PROXIES = ("nginx", "caddy")
OUTPOSTS = ("embedded", "standalone")
RESTARTED_WITHIN = 30.0  # bound for the restarted outpost to serve the hosts again


@pytest.fixture(scope="module", params=[(s, o) for s in STORES for o in OUTPOSTS], ids=lambda p: f"{p[0]}-{p[1]}")
def stack(request, stack_factory) -> Iterator[Stack]:
    store, outpost = request.param
    stack = stack_factory(store=store, standalone=outpost == "standalone")
    yield stack
    stack.stop()  # before the next combination starts (the factory's stop is then a no-op)


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, dict]:
    """Created before the applications, so the snapshot that serves them already lists these users."""
    return {"alice": stack.user("alice", PASSWORD, [GROUP], name="Alice Stored", email="alice@stores.test"),
            "leo": stack.user("leo", PASSWORD, [GROUP])}


@pytest.fixture(scope="module")
def sites(stack: Stack, people, proxy_factory, upstream) -> Iterator[dict[str, Site]]:
    kind_of = "standalone" if stack.standalone else "embedded"
    sites = {kind: add_site(stack, proxy_factory, upstream, kind, f"{kind}-{stack.store}-{kind_of}",
                            host=f"{kind}.app.test", group=GROUP) for kind in PROXIES}
    yield sites
    for site in sites.values():
        site.proxy.stop()


@pytest.fixture(scope="module")
def alice(people) -> dict:
    return people["alice"]


def debug(stack: Stack, site: Site, browser: Browser) -> str:
    return f"{browser.trail()}\n--- {site.kind} ---\n{site.proxy.log_text()[-2000:]}\n{stack.logs()}"


@pytest.mark.parametrize("kind", PROXIES)
def test_login_passes_identity(kind, stack, sites, alice):
    site = sites[kind]
    with Browser() as browser:
        sign_in(stack, site, browser, "alice", PASSWORD)
        r = browser.get(site.url("/private?x=1"))
        assert r.status_code == 200 and reached(r), f"{r.status_code}\n{debug(stack, site, browser)}"
        seen = identity_seen(r)
        assert seen["X-authentik-username"] == ["alice"]
        assert seen["X-authentik-groups"] == [GROUP]
        assert seen["X-authentik-email"] == ["alice@stores.test"]
        assert seen["X-authentik-name"] == ["Alice Stored"]
        assert seen["X-authentik-uid"] == [alice["uid"]]
        assert len(seen["X-authentik-jwt"]) == 1


def restart(stack: Stack, sites: dict[str, Site]) -> None:
    """Restart the process that holds the outpost's sessions and wait until it serves every site again."""
    if stack.standalone is not None:
        stack.standalone.restart()
    else:
        stack.core.restart()
    for site in sites.values():
        until(lambda s=site: stack.served(s.app.external_url), RESTARTED_WITHIN,
              f"{site.kind} app served after the restart", stack.logs)


def snapshot_path(stack: Stack) -> Path:
    """Where the memory store keeps its snapshot (outpost/app.py session_store, core/outposts/embedded.py _store)."""
    if stack.standalone is not None:
        return stack.standalone.workdir / "gatehouse-proxy-sessions.json"
    return stack.core.data_dir / "proxy-sessions.json"


def test_restart_keeps_sessions(stack, sites, alice):
    browsers = {kind: Browser() for kind in PROXIES}
    leaver = Browser()
    try:
        cookies = {kind: sign_in(stack, sites[kind], browsers[kind], "alice", PASSWORD) for kind in PROXIES}
        # another user's session, signed out before the restart: the snapshot must not bring it back (another
        # user, since sign_out ends every proxy session of its user)
        nginx = sites["nginx"]
        gone = sign_in(stack, nginx, leaver, "leo", PASSWORD)
        r = leaver.get(nginx.url("/outpost.goauthentik.io/sign_out"))
        assert r.status_code == 302, f"sign_out: {r.status_code}"

        restart(stack, sites)
        snapshot = snapshot_path(stack)
        if stack.store == "memory":  # what carried the sessions over: the snapshot written at shutdown
            assert snapshot.exists(), f"no session snapshot at {snapshot}"
        else:  # Redis carried them; the memory snapshot is not in use
            assert not snapshot.exists(), f"{snapshot} written although the store is Redis"

        for kind, browser in browsers.items():
            site = sites[kind]
            r = browser.get(site.url("/after-restart"))  # no redirect followed: the session must just work
            assert r.status_code == 200 and reached(r), \
                f"{kind}: {r.status_code} {r.headers.get('location')}\n{debug(stack, site, browser)}"
            assert identity_seen(r)["X-authentik-username"] == ["alice"]
            assert identity_seen(r)["X-authentik-uid"] == [alice["uid"]]
            assert browser.cookie(site.app.cookie_name) == cookies[kind], "the cookie was not replaced"
        with Browser() as replay:  # the signed-out session stays signed out
            replay.cookies.set(nginx.app.cookie_name, gone, domain="nginx.app.test")
            r = replay.get(nginx.url("/after-restart"))
            assert r.status_code == 302 and not reached(r), f"{r.status_code}"
            assert urlsplit(r.headers["location"]).path == "/outpost.goauthentik.io/start"
    finally:
        for browser in (*browsers.values(), leaver):
            browser.close()
