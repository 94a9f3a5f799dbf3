"""Fault: ``kill -9`` of one of two ``ak server`` replicas behind a real nginx (configs/nginx/core-load-balancer.conf)
under a small bounded load (API reads, API writes, password logins through the flow executor), with a standalone
proxy outpost whose websocket goes through nginx to the replica that is killed. nginx fails over; the errors
clients saw are counted; a write that was answered 201 is there afterwards, one that failed is there once or not
at all; every session a login made still works; the outpost reconnects to the survivor and answers forward auth
for a logged-in session throughout. The figures are printed."""

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
from tests.server.test_cluster_db import EXECUTOR
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


class Writes(threading.Thread):
    """API writes through the load balancer, one at a time: each POST makes a group of its own name. ``answers``
    maps each name to the status (or error) its client saw."""

    def __init__(self, base_url: str):
        super().__init__(daemon=True)
        self.base_url, self.done, self.answers = base_url, threading.Event(), {}

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10,
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            for n in range(MAX_REQUESTS):
                if self.done.is_set():
                    return
                name = f"failover-write-{n}"
                try:
                    self.answers[name] = client.post("/api/v3/core/groups/", json={"name": name}).status_code
                except httpx.HTTPError as exc:
                    self.answers[name] = type(exc).__name__


class Logins(threading.Thread):
    """Password logins of akadmin through the flow executor, one at a time, each in a new client. ``sessions``
    holds the clients whose login ended logged in; ``seen`` counts the outcomes ("ok" or the failing status)."""

    def __init__(self, base_url: str):
        super().__init__(daemon=True)
        self.base_url, self.done, self.seen, self.sessions = base_url, threading.Event(), Counter(), []

    def once(self) -> str | int:
        client = httpx.Client(base_url=self.base_url, timeout=10, follow_redirects=True)
        try:
            for body in ({"component": "ak-stage-identification", "uid_field": "akadmin"},
                         {"component": "ak-stage-password", "password": ADMIN_PASSWORD}):
                answer = client.post(EXECUTOR, json=body)
                if answer.status_code != 200:
                    client.close()
                    return answer.status_code
            if answer.json().get("component") != "xak-flow-redirect":
                client.close()
                return answer.json().get("component", "?")
        except httpx.HTTPError as exc:
            client.close()
            return type(exc).__name__
        self.sessions.append(client)
        return "ok"

    def run(self) -> None:
        for _ in range(MAX_REQUESTS // 10):
            if self.done.is_set():
                return
            self.seen[self.once()] += 1


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


def paged(api: httpx.Client, path: str, params: dict) -> list[dict]:
    rows, page = [], 1
    while True:
        answer = api.get(path, params={**params, "page": page, "page_size": 100}).json()
        rows += answer["results"]
        if not answer["pagination"]["next"]:
            return rows
        page += 1


def test_kill_one_core_replica_under_load(cluster, tmp_path):  # noqa: F811
    cores, balanced, access_log = cluster
    api = httpx.Client(base_url=balanced + "/api/v3", timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    upstream = start_upstream()
    outpost = None
    load, writes, logins = Load(balanced), Writes(balanced), Logins(balanced)
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
        for thread in (load, writes, logins):
            thread.start()
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
        for thread in (load, writes, logins):
            thread.done.set()
            thread.join(BOUND)
            assert not thread.is_alive()
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
        # writes: each one answered 201 is there; one that failed is there once or not at all (nothing half done)
        made = Counter(group["name"] for group in paged(api, "/core/groups/", {"search": "failover-write-"}))
        assert all(n == 1 for n in made.values()), [name for name, n in made.items() if n > 1]
        answered = {name for name, status in writes.answers.items() if status == 201}
        assert answered <= set(made), sorted(answered - set(made))
        failed = {name: status for name, status in writes.answers.items() if status != 201}
        assert set(made) <= set(writes.answers), sorted(set(made) - set(writes.answers))
        assert all(status in (502, 503, 504) or isinstance(status, str) for status in failed.values()), failed
        # logins: every session a login made is still valid, and a new login works through the survivor
        assert logins.seen["ok"] > 0, logins.seen
        kept = Counter(client.get("/api/v3/core/users/me/").status_code for client in logins.sessions)
        assert kept == Counter({200: len(logins.sessions)}), kept
        sessions = len(logins.sessions)
        assert logins.once() == "ok"
        print(f"\nkill -9 of one core replica under load: {sum(load.seen.values())} API GETs through nginx, "
              f"{load.errors()} errors ({dict(load.seen)}); {len(writes.answers)} API POSTs, failed "
              f"{dict(Counter(failed.values()))}, of which {len(set(failed) & set(made))} had been made (answer "
              f"lost), {len(set(failed) - set(made))} not; {sum(logins.seen.values())} password logins "
              f"{dict(logins.seen)}, all {sessions} sessions still valid; outpost connected again "
              f"{reconnected * 1000:.0f} ms after the kill (of replica {'A' if victim is cores[0] else 'B'}); "
              f"forward auth {dict(answers)} meanwhile")
    finally:
        for thread in (load, writes, logins):
            thread.done.set()
        for client in logins.sessions:
            client.close()
        upstream.stop()
        if outpost is not None:
            outpost.stop()
