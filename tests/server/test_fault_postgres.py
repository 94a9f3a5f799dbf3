"""Fault: PostgreSQL restarted under ``ak server``. A private PostgreSQL (initdb, a free port; never the
machine's shared one) is stopped: ``/-/health/ready/`` answers 503 while it is down and live stays 200, and a
standalone ``ak outpost proxy`` keeps serving a logged-in session from what it holds; PostgreSQL started
again, the same core process answers ready 200 and the API without a restart. The figures are printed."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import need
from tests.e2e.support.browser import Browser
from tests.e2e.support.stack import BOOTSTRAP_TOKEN, login, start_stack
from tests.e2e.support.upstream import start_upstream
from tests.support import postgres

PASSWORD = "Correct-Horse-fault-7!"  # noqa: S105 - a test password
BOUND = 30.0  # a bound on each wait, not a goal


@pytest.fixture
def private_pg():
    need(postgres.StreamingPair.available() is None, str(postgres.StreamingPair.available()))
    server = postgres.PrivatePostgres.start()
    with server.connect() as conn:
        conn.execute("CREATE DATABASE authentik")
    yield server
    server.stop()


def status(url: str, token: str = "") -> int | str:
    try:
        return httpx.get(url, timeout=5, headers={"Authorization": f"Bearer {token}"} if token else {}).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def test_postgresql_restart(tmp_path, private_pg):
    env = {"AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": str(private_pg.port),
           "AUTHENTIK_POSTGRESQL__USER": "postgres", "AUTHENTIK_POSTGRESQL__NAME": "authentik",
           "AUTHENTIK_REDIS__HOST": ""}
    stack = start_stack(tmp_path, standalone=True, env=env, browser_host="127.0.0.1")
    upstream = start_upstream()
    try:
        core, outpost = stack.core, stack.standalone
        app = stack.add_app("pgfault", f"http://app.test:{outpost.port}", mode="proxy",
                            internal_host=upstream.url)
        stack.user("petra", PASSWORD)
        with Browser(names=("app.test",)) as browser:
            assert login(browser, app.external_url + "/page", "petra", PASSWORD).response.status_code == 200
            cookie = {app.cookie_name: browser.cookie(app.cookie_name)}

            def forward_auth(cookies: dict) -> int:
                return httpx.get(outpost.url + "/outpost.goauthentik.io/auth/traefik", timeout=5, cookies=cookies,
                                 headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": f"app.test:{outpost.port}",
                                          "X-Forwarded-Uri": "/page", "X-Forwarded-Method": "GET"}).status_code

            assert forward_auth(cookie) == 200
            assert forward_auth({}) == 302
            ready, live = core.url + "/-/health/ready/", core.url + "/-/health/live/"
            assert status(ready) == 200

            stopped = time.monotonic()
            private_pg.halt()
            while (seen := status(ready)) != 503:
                assert seen == 200 and time.monotonic() < stopped + BOUND, seen
                time.sleep(0.05)
            not_ready_after = time.monotonic() - stopped
            assert status(live) == 200
            api_down = status(core.url + "/api/v3/core/users/", BOOTSTRAP_TOKEN)
            assert api_down != 200  # nothing to answer from
            # the outpost, from what it holds: the session, the anonymous redirect, the proxied page
            served = [forward_auth(cookie) for _ in range(20)] + [forward_auth({})]
            assert served == [200] * 20 + [302], served
            assert browser.get(app.external_url + "/page").status_code == 200
            assert status(ready) == 503

            started = time.monotonic()
            private_pg.resume()
            pg_up = time.monotonic() - started
            while (seen := status(ready)) != 200:
                assert time.monotonic() < started + BOUND, seen
                time.sleep(0.05)
            recovered = time.monotonic() - started
            users = stack.api("GET", "/core/users/", params={"username": "petra"})
            assert users["pagination"]["count"] == 1, users
            assert forward_auth(cookie) == 200
            assert core.process.poll() is None  # the same process: no restart
            # a new login works again
            with Browser(names=("app.test",)) as again:
                assert login(again, app.external_url + "/page", "petra", PASSWORD).response.status_code == 200
        print(f"\nPostgreSQL restart: ready 503 {not_ready_after * 1000:.0f} ms after the stop; outpost answered "
              f"21/21 forward auth while down; the core's API answered {api_down}; PostgreSQL up {pg_up * 1000:.0f} ms after pg_ctl start, core "
              f"ready {recovered * 1000:.0f} ms after pg_ctl start (same process)")
        assert "Traceback" not in outpost.tail(400), outpost.tail()
    finally:
        upstream.stop()
        stack.stop()
