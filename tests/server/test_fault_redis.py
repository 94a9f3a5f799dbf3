"""Fault: Redis (no persistence) restarted under ``ak server`` and a standalone ``ak outpost proxy`` that keeps
its sessions there. A private redis-server (a free port, ``--save '' --appendonly no``; never the machine's
shared one) is stopped and started empty: the core's readiness answers 503 while Redis is away and 200 again
once it is back (the same process), no process crashes or hangs, the core's own sessions (kept in the
database, Redis is only their cache) survive, the outpost's proxy sessions are lost (their users log in again,
as with authentik), and logins work at once. The figures are printed."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from tests.conftest import need
from tests.e2e.support.browser import Browser
from tests.e2e.support.stack import login, start_stack
from tests.e2e.support.upstream import start_upstream
from tests.server.conftest import ADMIN_PASSWORD
from tests.server.test_cluster_db import login as core_login
from tests.support.postgres import wait_port
from tests.support.server import free_port

PASSWORD = "Correct-Horse-fault-8!"  # noqa: S105 - a test password
BOUND = 30.0  # a bound on each wait, not a goal


class PrivateRedis:
    def __init__(self, workdir):
        self.port, self.workdir, self.process = free_port(), workdir, None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.port, "redis-server", self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    need(shutil.which("redis-server") is not None, "redis-server")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_redis_restart(tmp_path, private_redis):
    redis_env = {"AUTHENTIK_REDIS__HOST": "127.0.0.1", "AUTHENTIK_REDIS__PORT": str(private_redis.port),
                 "AUTHENTIK_REDIS__DB": "0"}
    stack = start_stack(tmp_path / "stack", standalone=True, browser_host="127.0.0.1",
                        env={**redis_env, "AUTHENTIK_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
    upstream = start_upstream()
    try:
        core, outpost = stack.core, stack.standalone
        outpost.env.update(redis_env)  # the outpost's proxy sessions on the same Redis
        outpost.restart()
        app = stack.add_app("redisfault", f"http://app.test:{outpost.port}", mode="proxy",
                            internal_host=upstream.url)
        stack.user("rosa", PASSWORD)
        import redis

        client = redis.Redis(host="127.0.0.1", port=private_redis.port)
        with Browser(names=("app.test",)) as browser:
            assert login(browser, app.external_url + "/page", "rosa", PASSWORD).response.status_code == 200
            cookie = {app.cookie_name: browser.cookie(app.cookie_name)}
            admin = core_login(core.url)  # a session of the core itself (its cache is in Redis)

            def forward_auth(cookies: dict) -> int:
                return httpx.get(outpost.url + "/outpost.goauthentik.io/auth/traefik", timeout=5, cookies=cookies,
                                 headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": f"app.test:{outpost.port}",
                                          "X-Forwarded-Uri": "/page", "X-Forwarded-Method": "GET"}).status_code

            assert forward_auth(cookie) == 200
            keys_before = client.dbsize()
            assert keys_before > 0

            stopped = time.monotonic()
            private_redis.stop()
            unready = httpx.get(core.url + "/-/health/ready/", timeout=10)
            unready_after = time.monotonic() - stopped
            down = {"core ready": unready.status_code, "forward auth": forward_auth(cookie)}
            assert unready.status_code == 503, unready.text  # the Service stops sending it requests
            assert unready.json()["reason"].startswith("redis unreachable"), unready.text
            assert httpx.get(core.url + "/-/health/live/", timeout=10).status_code == 200  # no restart wanted
            private_redis.start()
            restarted = time.monotonic() - stopped
            assert client.dbsize() == 0  # no persistence: everything in Redis is gone

            # no crash, no stuck process: both answer at once; ready again without a restart
            assert core.process.poll() is None and outpost.process.poll() is None
            started = time.monotonic()
            while httpx.get(core.url + "/-/health/ready/", timeout=10).status_code != 200:
                assert time.monotonic() < started + BOUND
                time.sleep(0.05)
            ready_again = time.monotonic() - started
            assert admin.get("/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"  # kept
            lost = forward_auth(cookie)
            assert lost == 302, lost  # the proxy session was in Redis: to the login again
            with Browser(names=("app.test",)) as again:
                assert login(again, app.external_url + "/page", "rosa", PASSWORD).response.status_code == 200
                again_cookie = {app.cookie_name: again.cookie(app.cookie_name)}
                assert forward_auth(again_cookie) == 200
            assert core_login(core.url).get("/api/v3/core/users/me/").status_code == 200
            recovered = time.monotonic() - started
            assert admin.post("/api/v3/flows/executor/default-authentication-flow/", json={}).status_code < 500
        print(f"\nRedis restart (no persistence): down {restarted * 1000:.0f} ms; while down {down} (ready 503 "
              f"{unready_after * 1000:.0f} ms after the stop, 200 again {ready_again * 1000:.0f} ms after the start); "
              f"{keys_before} keys lost; the core's session kept, the outpost's proxy session lost (302 to the "
              f"login); a new proxy login and a core login done {recovered * 1000:.0f} ms after Redis was back")
        assert "Traceback" not in core.output(), core.tail()
    finally:
        upstream.stop()
        stack.stop()


def test_outpost_killed_and_restarted_keeps_its_redis_sessions(tmp_path, private_redis):
    """``kill -9`` of a standalone proxy outpost whose sessions are in Redis, started again: the user is still
    logged in (no new login)."""
    redis_env = {"AUTHENTIK_REDIS__HOST": "127.0.0.1", "AUTHENTIK_REDIS__PORT": str(private_redis.port),
                 "AUTHENTIK_REDIS__DB": "0"}
    stack = start_stack(tmp_path / "stack", standalone=True, browser_host="127.0.0.1", env=redis_env)
    upstream = start_upstream()
    try:
        outpost = stack.standalone
        outpost.env.update(redis_env)
        outpost.restart()
        app = stack.add_app("outpostfault", f"http://app.test:{outpost.port}", mode="proxy",
                            internal_host=upstream.url)
        stack.user("otto", PASSWORD)
        with Browser(names=("app.test",)) as browser:
            assert login(browser, app.external_url + "/page", "otto", PASSWORD).response.status_code == 200
            cookie = {app.cookie_name: browser.cookie(app.cookie_name)}

            def forward_auth() -> int | str:
                try:
                    return httpx.get(outpost.url + "/outpost.goauthentik.io/auth/traefik", timeout=5, cookies=cookie,
                                     headers={"X-Forwarded-Proto": "http",
                                              "X-Forwarded-Host": f"app.test:{outpost.port}",
                                              "X-Forwarded-Uri": "/page", "X-Forwarded-Method": "GET"}).status_code
                except httpx.HTTPError as exc:
                    return type(exc).__name__

            assert forward_auth() == 200
            killed = time.monotonic()
            outpost.process.kill()
            outpost.process.wait(10)
            outpost.start()  # same ports, same Redis
            answers = []
            while (answer := forward_auth()) != 200:
                answers.append(answer)
                assert answer != 302, "the session was lost: the user would log in again"
                assert time.monotonic() < killed + BOUND, f"{answers[-5:]}\n{outpost.tail()}"
                time.sleep(0.05)
            back = time.monotonic() - killed
            assert browser.get(app.external_url + "/page").status_code == 200  # the page, no login
        print(f"\nproxy outpost kill -9 and start (sessions in Redis): forward auth 200 again for the same session "
              f"{back * 1000:.0f} ms after the kill, no new login; meanwhile {len(answers)} failed probes "
              f"({sorted(set(map(str, answers)))})")
    finally:
        upstream.stop()
        stack.stop()
