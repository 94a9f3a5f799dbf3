"""Redis Sentinel (AUTHENTIK_REDIS__URL=redis+sentinel://…) for ``ak server`` and a standalone
``ak outpost proxy``: a private master, replica and three sentinels (tests/support/redis_sentinel.py, free
loopback ports, never the machine's shared Redis). The master is killed with SIGKILL; the sentinels promote
the replica, and without a restart the core logs people in again, reports ready, keeps its sessions (cached
in Redis), the outpost's proxy session (in Redis, replicated) still lets its user through, and an application
added after the failover reaches the outpost (the core's Redis PUBLISH). The figures are printed."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from tests.conftest import need
from tests.e2e.support.browser import Browser
from tests.e2e.support.stack import login, start_stack
from tests.e2e.support.upstream import start_upstream
from tests.server.conftest import ADMIN_PASSWORD
from tests.server.test_cluster_db import login as core_login
from tests.support import redis_sentinel
from tests.support.redis_sentinel import SentinelSet

PASSWORD = "Correct-Horse-sentinel-8!"  # noqa: S105 - a test password
BOUND = 30.0  # a bound on each wait, not a goal


@pytest.fixture
def sentinels(tmp_path):
    need(redis_sentinel.available(), "redis-server (Debian package redis-server)")
    group = SentinelSet(tmp_path / "sentinel")
    try:
        yield group.start()
    finally:
        group.stop()


def attempt(what):
    """``what()``'s answer, or the error's name (a probe under a fault must not fail the test by itself)."""
    try:
        return what()
    except (httpx.HTTPError, AssertionError, ValueError) as exc:
        return type(exc).__name__


def test_sentinel_failover_keeps_core_and_outpost_serving(tmp_path, sentinels):
    redis_env = {"AUTHENTIK_REDIS__URL": sentinels.url(0)}
    stack = start_stack(tmp_path / "stack", standalone=True, browser_host="127.0.0.1",
                        env={**redis_env, "AUTHENTIK_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
    upstream = start_upstream()
    try:
        core, outpost = stack.core, stack.standalone
        outpost.env.update(redis_env)  # the outpost's proxy sessions on the same Sentinel-managed Redis
        outpost.restart()
        app = stack.add_app("sentinel", f"http://app.test:{outpost.port}", mode="proxy",
                            internal_host=upstream.url)
        stack.user("sven", PASSWORD)
        master = redis.Redis(host="127.0.0.1", port=sentinels.master_port)
        replica = redis.Redis(host="127.0.0.1", port=sentinels.replica_port)

        def forward_auth(cookies: dict) -> int:
            return httpx.get(outpost.url + "/outpost.goauthentik.io/auth/traefik", timeout=5, cookies=cookies,
                             headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": f"app.test:{outpost.port}",
                                      "X-Forwarded-Uri": "/page", "X-Forwarded-Method": "GET"}).status_code

        def ready() -> int:
            return httpx.get(core.url + "/-/health/ready/", timeout=10).status_code

        def logs_in() -> str:
            core_login(core.url).close()
            return "ok"

        with Browser(names=("app.test",)) as browser:
            assert login(browser, app.external_url + "/page", "sven", PASSWORD).response.status_code == 200
            cookie = {app.cookie_name: browser.cookie(app.cookie_name)}
            admin = core_login(core.url)  # the core's own session, cached in Redis
            assert forward_auth(cookie) == 200
            keys = master.dbsize()
            assert keys > 0, "nothing reached Redis through the sentinels"
            started = time.monotonic()
            while replica.dbsize() < keys:  # replication is asynchronous: what was written is on the replica
                assert time.monotonic() < started + BOUND
                time.sleep(0.05)

            killed = time.monotonic()
            sentinels.kill_master()
            seen: dict[str, list] = {"login": [], "forward auth": [], "ready": []}
            first_ok: dict[str, float] = {}
            while len(first_ok) < len(seen):
                for name, probe in (("login", logs_in), ("forward auth", lambda: forward_auth(cookie)),
                                    ("ready", ready)):
                    if name in first_ok:
                        continue
                    answer = attempt(probe)
                    if answer in ("ok", 200):
                        first_ok[name] = time.monotonic() - killed
                    else:
                        seen[name].append(answer)
                assert time.monotonic() < killed + BOUND, f"{seen}\n{core.tail()}\n{outpost.tail()}"
                time.sleep(0.05)
            while sentinels.master_addresses() != {("127.0.0.1", sentinels.replica_port)}:  # all agree
                assert time.monotonic() < killed + BOUND, sentinels.master_addresses()
                time.sleep(0.05)

            # nothing lost, no restart: the processes that started are the ones answering
            assert core.process.poll() is None and outpost.process.poll() is None
            assert admin.get("/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"
            assert forward_auth(cookie) == 200  # the proxy session, replicated before the kill
            assert browser.get(app.external_url + "/page").status_code == 200
            assert 302 not in seen["forward auth"], "the proxy session was lost: its user would log in again"
            # a change made after the failover reaches the outpost through the new master
            later = stack.add_app("sentinel-later", f"http://later.test:{outpost.port}", mode="proxy",
                                  internal_host=upstream.url)
            assert stack.served(later.external_url)
            with Browser(names=("app.test",)) as again:  # a new proxy login, written to the promoted master
                assert login(again, app.external_url + "/page", "sven", PASSWORD).response.status_code == 200
            assert redis.Redis(host="127.0.0.1", port=sentinels.replica_port).dbsize() >= keys
        errors = {name: f"{len(answers)} failed probes {sorted(set(map(str, answers)))}"
                  for name, answers in seen.items() if answers}
        print(f"\nRedis Sentinel failover (master SIGKILL, down-after {redis_sentinel.DOWN_AFTER_MS} ms): "
              + ", ".join(f"{name} ok again after {at * 1000:.0f} ms" for name, at in sorted(first_ok.items()))
              + f"; failures meanwhile {errors}; {keys} keys, none lost "
              "(core session and proxy session kept)")
    finally:
        upstream.stop()
        stack.stop()



def test_sentinel_passwords_and_failover_in_both_clients(tmp_path):
    """Master and replica with ``requirepass``, sentinels with their own: the URL's two passwords reach the right
    servers, a wrong one is refused, and the blocking and asyncio clients (protocols/redis_url.py: the core's
    and the outposts') both write to the promoted replica after the master is killed."""
    import asyncio

    from redis.exceptions import RedisError

    from protocols import redis_url

    need(redis_sentinel.available(), "redis-server (Debian package redis-server)")
    group = SentinelSet(tmp_path / "sentinel", password="master-pw", sentinel_password="sentinel-pw").start()
    try:
        url = group.url(5)
        for wrong in (url.replace("master-pw", "nope"), url.replace("sentinel-pw", "nope")):
            with pytest.raises(RedisError):
                redis_url.client(wrong, socket_timeout=2, socket_connect_timeout=2).get("x")

        def until_written(write) -> tuple[float, int]:
            started, failures = time.monotonic(), 0
            while True:
                try:
                    write()
                    return time.monotonic() - started, failures
                except (RedisError, OSError):
                    failures += 1
                    assert time.monotonic() < started + BOUND
                    time.sleep(0.05)

        async def scenario() -> dict:
            blocking = redis_url.client(url, socket_timeout=2, socket_connect_timeout=2)
            aio = redis_url.async_client(url, socket_timeout=2, socket_connect_timeout=2)
            blocking.set("before", "1")
            await aio.set("async-before", "1")
            assert group.client(group.master_port, db=5).mget("before", "async-before") == [b"1", b"1"]
            replica = group.client(group.replica_port, db=5)
            started = time.monotonic()
            while replica.exists("before", "async-before") < 2:  # replicated before the kill
                assert time.monotonic() < started + BOUND
                time.sleep(0.05)
            group.kill_master()
            figures = {"blocking": until_written(lambda: blocking.set("after", "1"))}
            started, failures = time.monotonic(), 0
            while True:
                try:
                    await aio.set("async-after", "1")
                    break
                except (RedisError, OSError):
                    failures += 1
                    assert time.monotonic() < started + BOUND
                    await asyncio.sleep(0.05)
            figures["asyncio"] = (time.monotonic() - started, failures)
            assert replica.mget("before", "async-before", "after", "async-after") == [b"1"] * 4  # the new master
            await aio.aclose()
            blocking.close()
            return figures

        figures = asyncio.run(scenario())
        print("\nSentinel with passwords, master SIGKILL: " + "; ".join(
            f"{name} client wrote again after {seconds * 1000:.0f} ms ({failures} failed tries)"
            for name, (seconds, failures) in figures.items()))
    finally:
        group.stop()
