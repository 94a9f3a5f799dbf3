"""Fault: ``kill -9`` of one of two ``ak server`` replicas behind a real nginx (configs/nginx/core-load-balancer.conf)
under a small bounded API load, with a standalone proxy outpost whose websocket goes through nginx to the replica
that is killed. nginx fails over; the errors clients saw are counted; the outpost reconnects to the survivor and
answers forward auth for a logged-in session throughout. The figures are printed."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import httpx

from tests.e2e.support.browser import Browser
from tests.e2e.support.stack import AUTHORIZATION_FLOW, login
from tests.e2e.support.upstream import start_upstream
from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.server.test_cluster_replicas import cluster  # noqa: F401 - the fixture
from tests.support.outpost import OutpostProcess

BOUND = 30.0  # a bound on each wait, not a goal
MAX_REQUESTS = 3000  # the load's bound in count (and it stops when the test is done)


class Load(threading.Thread):
    """API GETs through the load balancer, one at a time, counting answers and errors."""

    def __init__(self, base_url: str):
        super().__init__(daemon=True)
        self.base_url, self.done, self.seen = base_url, threading.Event(), Counter()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10,
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            for _ in range(MAX_REQUESTS):
                if self.done.is_set():
                    return
                try:
                    self.seen[client.get("/api/v3/core/groups/", params={"page_size": 1}).status_code] += 1
                except httpx.HTTPError as exc:
                    self.seen[type(exc).__name__] += 1

    def errors(self) -> int:
        return sum(n for what, n in self.seen.items() if what != 200)


def websocket_ended_on(access_log, port: int) -> bool:
    return bool(re.search(rf"^GET /ws/outpost/\S* 101 127\.0\.0\.1:{port}$", access_log.read_text(), re.MULTILINE))


def ended_within(access_log, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not websocket_ended_on(access_log, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def connections(outpost: OutpostProcess) -> int:
    """How many times the outpost has connected its websocket (its log says so each time)."""
    return outpost.log.read_text(errors="replace").count('"event": "connected to the core"')


def test_kill_one_core_replica_under_load(cluster, tmp_path):  # noqa: F811
    cores, balanced, access_log = cluster
    api = httpx.Client(base_url=balanced + "/api/v3", timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    upstream = start_upstream()
    outpost = None
    load = Load(balanced)
    try:
        created = api.post("/outposts/instances/", json={"name": "failover", "type": "proxy", "providers": []})
        assert created.status_code == 201, created.text
        key = api.get(f"/core/tokens/{created.json()['token_identifier']}/view_key/").json()["key"]
        outpost = OutpostProcess(tmp_path / "outpost", balanced, key)  # REST and websocket through nginx
        outpost.start()
        outpost.wait_connected()
        flow = api.get("/flows/instances/", params={"slug": AUTHORIZATION_FLOW}).json()["results"][0]["pk"]
        external = f"http://app.test:{outpost.port}"
        provider = api.post("/providers/proxy/", json={
            "name": "failover", "external_host": external, "internal_host": upstream.url,
            "authorization_flow": flow, "mode": "proxy"}).json()
        assert api.post("/core/applications/", json={"name": "failover", "slug": "failover",
                                                     "provider": provider["pk"]}).status_code == 201
        assert api.patch(f"/outposts/instances/{created.json()['pk']}/",
                         json={"providers": [provider["pk"]]}).status_code == 200
        import hashlib

        cookie_name = "authentik_proxy_" + hashlib.sha256(provider["client_id"].encode()).hexdigest()[:8]
        with Browser(names=("app.test",)) as browser:
            deadline = time.monotonic() + BOUND
            while browser.get(external + "/page").status_code != 302:  # the outpost serves the new app
                assert time.monotonic() < deadline, outpost.tail()
                time.sleep(0.05)
            assert login(browser, external + "/page", "akadmin", ADMIN_PASSWORD).response.status_code == 200
            cookie = {cookie_name: browser.cookie(cookie_name)}

        def forward_auth() -> int | str:
            try:
                return httpx.get(outpost.url + "/outpost.goauthentik.io/auth/traefik", timeout=5, cookies=cookie,
                                 headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": f"app.test:{outpost.port}",
                                          "X-Forwarded-Uri": "/page", "X-Forwarded-Method": "GET"}).status_code
            except httpx.HTTPError as exc:
                return type(exc).__name__

        assert forward_auth() == 200
        load.start()
        time.sleep(0.5)
        # kill -9 the replica holding the outpost's websocket: nginx logs the websocket when it ends, so kill
        # A; if the websocket was on B, start A again and, once nginx uses it again, kill B
        victim, survivor = cores
        before = connections(outpost)
        killed = time.monotonic()
        victim.kill()
        if not ended_within(access_log, victim.http_port, 2.0):
            victim.launch()
            victim.wait(timeout=BOUND)
            # nginx skips a replica for fail_timeout (10 s) after it failed: until it takes the load again
            served = len(access_log.read_text())
            deadline = time.monotonic() + BOUND
            while f" 200 127.0.0.1:{victim.http_port}\n" not in access_log.read_text()[served:]:
                assert time.monotonic() < deadline, "nginx did not send requests to the restarted replica"
                time.sleep(0.1)
            victim, survivor = survivor, victim
            killed = time.monotonic()
            victim.kill()
        assert ended_within(access_log, victim.http_port, BOUND)
        # the outpost: forward auth answered throughout, and connected again (through nginx, to the survivor)
        answers, reconnected = Counter(), None
        while time.monotonic() < killed + 5 or reconnected is None:
            answers[forward_auth()] += 1
            if reconnected is None and connections(outpost) > before and \
                    (outpost.ready() or {}).get("core_connected"):
                reconnected = time.monotonic() - killed
            assert time.monotonic() < killed + BOUND, f"the outpost did not reconnect:\n{outpost.tail()}"
            time.sleep(0.02)
        time.sleep(0.5)
        load.done.set()
        load.join(BOUND)
        assert not load.is_alive()
        assert answers == Counter({200: sum(answers.values())}), answers
        # the survivor serves everything; nothing was lost: the configuration made before the kill is there
        after = Counter(api.get("/core/applications/", params={"slug": "failover"}).status_code for _ in range(10))
        assert after == Counter({200: 10}), after
        assert api.get("/core/applications/", params={"slug": "failover"}).json()["pagination"]["count"] == 1
        assert load.seen[200] > 20, load.seen
        # a change made now reaches the outpost through its new connection
        assert api.patch(f"/providers/proxy/{provider['pk']}/", json={"external_host": external + "/"}).status_code \
            == 200
        assert survivor.process.poll() is None
        print(f"\nkill -9 of one core replica under load: {sum(load.seen.values())} API GETs through nginx, "
              f"{load.errors()} errors ({dict(load.seen)}); outpost connected again "
              f"{reconnected * 1000:.0f} ms after the kill (of replica {'A' if victim is cores[0] else 'B'}); "
              f"forward auth {dict(answers)} meanwhile")
    finally:
        load.done.set()
        upstream.stop()
        if outpost is not None:
            outpost.stop()
