"""Two ``ak server`` replicas on one PostgreSQL and one Redis, behind a real nginx load balancer
(configs/nginx/core-load-balancer.conf): a login begun on one replica finishes on the other, and an outpost
connected to replica A is sent a change made through replica B. Loopback only, every wait bounded."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import need
from tests.e2e.support.proxies import find_binary
from tests.e2e.support.render import render
from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.server.test_cluster_db import DIRECT, EXECUTOR
from tests.support import postgres
from tests.support.outpost import OutpostProcess
from tests.support.postgres import wait_port
from tests.support.server import create_database, drop_database, free_port, start_core

REDIS_DB = "12"  # this file's own database on the shared Redis
DEADLINE = 15.0  # a bound on waiting, not the goal (the figure is printed)


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def start_nginx(workdir: Path, cores: list[str]) -> tuple[subprocess.Popen, int]:
    binary = find_binary("nginx")
    need(binary is not None, "nginx")
    port = free_port()
    site = render("nginx/core-load-balancer.conf", workdir / "gatehouse.conf",
                  {"LISTEN": f"127.0.0.1:{port}", "CORE_1": cores[0], "CORE_2": cores[1]})
    temp = ""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / "temp" / sub).mkdir(parents=True, exist_ok=True)
        temp += f"    {sub}_temp_path {workdir / 'temp' / sub};\n"
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = workdir / "nginx.conf"
    main.write_text(
        f"daemon off;\n{user}worker_processes 1;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        "http {\n    log_format upstream '$request_method $uri $status $upstream_addr';\n"
        f"    access_log {workdir / 'access.log'} upstream;\n{temp}    include {site};\n}}\n")
    process = subprocess.Popen([binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(main)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port, "nginx", process, workdir / "error.log")
    return process, port


@pytest.fixture
def cluster(tmp_path):
    need(postgres.machine_postgres_answers(), "PostgreSQL on 127.0.0.1:5432 (user postgres, trust)")
    need(redis_answers(), "Redis on 127.0.0.1:6379")
    database = create_database(DIRECT)
    env = {**DIRECT, "AUTHENTIK_POSTGRESQL__NAME": database, "AUTHENTIK_REDIS__HOST": "127.0.0.1",
           "AUTHENTIK_REDIS__PORT": "6379", "AUTHENTIK_REDIS__DB": REDIS_DB}
    started, nginx = [], None
    try:
        for name in ("a", "b"):  # one after the other: concurrent first migrations are not serialised yet
            started.append(start_core(tmp_path / name, env=env, bootstrap_password=ADMIN_PASSWORD,
                                      bootstrap_token=ADMIN_TOKEN))
        nginx, port = start_nginx(tmp_path / "nginx", [f"127.0.0.1:{c.http_port}" for c in started])
        yield started, f"http://127.0.0.1:{port}", tmp_path / "nginx" / "access.log"
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        for core in reversed(started):
            core.terminate()
        drop_database(DIRECT, database)


def test_a_login_begun_on_one_replica_finishes_on_the_other(cluster):
    (a, b), balanced, access_log = cluster
    # explicitly: each step on the other replica (one cookie jar: cookies are per host, not per port)
    with httpx.Client(timeout=30, follow_redirects=True) as browser:  # a POST's answer is a redirect (PRG)
        assert browser.get(a.url + EXECUTOR).json()["component"] == "ak-stage-identification"
        step = browser.post(b.url + EXECUTOR, json={"component": "ak-stage-identification", "uid_field": "akadmin"})
        assert step.json()["component"] == "ak-stage-password", step.text
        done = browser.post(a.url + EXECUTOR, json={"component": "ak-stage-password", "password": ADMIN_PASSWORD})
        assert done.json()["component"] == "xak-flow-redirect", done.text
        for core in (a, b):
            assert browser.get(core.url + "/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"
    # through the load balancer (round robin): the steps land on both replicas
    with httpx.Client(base_url=balanced, timeout=30, follow_redirects=True) as browser:
        browser.get(EXECUTOR)
        browser.post(EXECUTOR, json={"component": "ak-stage-identification", "uid_field": "akadmin"})
        done = browser.post(EXECUTOR, json={"component": "ak-stage-password", "password": ADMIN_PASSWORD})
        assert done.json()["component"] == "xak-flow-redirect", done.text
        for _ in range(4):
            assert browser.get("/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"
    served = re.findall(r"^\S+ (/api/v3/\S+) (\d+) (\S+)$", access_log.read_text(), re.MULTILINE)
    assert len(served) >= 7 and all(status in ("200", "302") for _, status, _ in served), served
    assert {upstream for _, _, upstream in served} == {f"127.0.0.1:{a.http_port}", f"127.0.0.1:{b.http_port}"}


def test_an_outpost_on_replica_a_gets_a_change_made_through_replica_b(cluster, tmp_path):
    """Replica A's outpost, and a second replica of the same outpost connected through the load balancer."""
    (a, b), balanced, _ = cluster
    api_a, api_b = (httpx.Client(base_url=core.url + "/api/v3", timeout=30,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) for core in (a, b))
    flow = api_a.get("/flows/instances/", params={"designation": "authorization"}).json()["results"][0]["pk"]
    created = api_a.post("/outposts/instances/", json={"name": "cluster", "type": "proxy", "providers": []})
    assert created.status_code == 201, created.text
    key = api_a.get(f"/core/tokens/{created.json()['token_identifier']}/view_key/").json()["key"]
    outpost = OutpostProcess(tmp_path / "outpost", a.url, key)
    balanced_outpost = OutpostProcess(tmp_path / "outpost-lb", balanced, key)  # its websocket through nginx
    outpost.start()
    balanced_outpost.start()
    try:
        outpost.wait_connected()
        balanced_outpost.wait_connected()

        def forward_auth(to: OutpostProcess = outpost) -> int:
            return httpx.get(to.url + "/outpost.goauthentik.io/auth/traefik", timeout=5, headers={
                "X-Forwarded-Proto": "https", "X-Forwarded-Host": "via-b.example.com", "X-Forwarded-Uri": "/",
                "X-Forwarded-Method": "GET"}).status_code

        provider = api_b.post("/providers/proxy/", json={
            "name": "via-b", "external_host": "https://via-b.example.com", "internal_host": "http://127.0.0.1:9",
            "authorization_flow": flow, "mode": "forward_single"}).json()["pk"]
        assert api_b.post("/core/applications/", json={"name": "via-b", "slug": "via-b",
                                                       "provider": provider}).status_code == 201
        assert forward_auth() == 400  # not one of its applications yet
        sent = time.monotonic()
        changed = api_b.patch(f"/outposts/instances/{created.json()['pk']}/", json={"providers": [provider]})
        assert changed.status_code == 200, changed.text
        while (status := forward_auth()) != 302:  # the new application, served: to the login
            assert status == 400 and time.monotonic() < sent + DEADLINE, \
                f"{status}; no update within {DEADLINE} s:\n{outpost.tail()}"
            time.sleep(0.01)
        took = time.monotonic() - sent
        while forward_auth(balanced_outpost) != 302:
            assert time.monotonic() < sent + DEADLINE, f"no update within {DEADLINE} s:\n{balanced_outpost.tail()}"
            time.sleep(0.01)
        print(f"change through replica B reached the outpost on replica A in {took * 1000:.0f} ms")
    finally:
        outpost.stop()
        balanced_outpost.stop()


SESSION_ENDS = ("logout", "delete_session", "deactivate")


def end_session(kind: str, core, api, browser, user: dict) -> None:
    """End ``user``'s login session through ``core`` alone (its URL, its API); returns when the call returned."""
    if kind == "logout":  # the invalidation flow with the browser's core session, as the logout link
        executor = core.url + "/api/v3/flows/executor/default-invalidation-flow/"
        asked = browser.get(executor, headers={"Accept": "application/json"})
        assert asked.json().get("component") == "xak-user-logout", asked.text[:300]
        done = browser.post(executor, json={"component": "xak-user-logout"}, headers={"Accept": "application/json"})
        assert done.status_code in (200, 302), done.text[:300]
    elif kind == "delete_session":
        sessions = api("GET", "/core/authenticated_sessions/", params={"user__username": user["username"]})
        assert len(sessions["results"]) == 1, sessions
        api("DELETE", f"/core/authenticated_sessions/{sessions['results'][0]['uuid']}/")
    else:
        api("PATCH", f"/core/users/{user['pk']}/", json={"is_active": False})


def test_a_session_ended_on_replica_a_is_refused_by_every_outpost(cluster, tmp_path):
    """Two replicas of one proxy outpost, each with its own (memory) session store, one connected to replica A
    and one to replica B; a user logged in through both (one core session: the second login is single sign-on).
    Ending the session through replica A (logout, the API deleting it, the user deactivated) makes both refuse
    their cookie: the outpost on B hears it only through the Redis fan-out between the replicas."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.support.browser import Browser
    from tests.e2e.support.live import refusal_delay
    from tests.e2e.support.stack import AUTHORIZATION_FLOW, App, login
    from tests.e2e.support.upstream import start_upstream
    from tests.support.api import Api

    (a, b), balanced, _ = cluster
    api = Api(a.url, ADMIN_TOKEN)
    upstream = start_upstream()
    outposts: list[OutpostProcess] = []
    try:
        created = api("POST", "/outposts/instances/", json={
            "name": "session-end", "type": "proxy", "providers": [], "config": {"authentik_host": balanced + "/"}})
        key = api("GET", f"/core/tokens/{created['token_identifier']}/view_key/")["key"]
        outposts = [OutpostProcess(tmp_path / f"outpost-{name}", core.url, key) for name, core in (("a", a), ("b", b))]
        flow = api.first("/flows/instances/", slug=AUTHORIZATION_FLOW)["pk"]
        apps = []
        for name, outpost in zip("ab", outposts, strict=True):
            external = f"http://{name}.app.test:{outpost.port}"
            provider = api("POST", "/providers/proxy/", json={
                "name": f"on-{name}", "external_host": external, "internal_host": upstream.url, "mode": "proxy",
                "authorization_flow": flow})
            api("POST", "/core/applications/", json={"name": f"on-{name}", "slug": f"on-{name}",
                                                     "provider": provider["pk"]})
            apps.append(App(f"on-{name}", f"on-{name}", provider["pk"], external, "proxy", provider["client_id"], None))
        api("PATCH", f"/outposts/instances/{created['pk']}/", json={"providers": [app.provider_pk for app in apps]})
        for outpost in outposts:
            outpost.start()
        for outpost in outposts:
            outpost.wait_connected()
        figures = {}
        for kind in SESSION_ENDS:
            user = api.user(f"ends-{kind}", ADMIN_PASSWORD)
            with Browser() as browser:
                deadline = time.monotonic() + DEADLINE
                while (first := browser.get(apps[0].external_url + "/page").status_code) != 302:
                    assert time.monotonic() < deadline, f"{first}: the outpost does not serve the application yet"
                    time.sleep(0.05)
                assert login(browser, apps[0].external_url + "/page", user["username"],
                             ADMIN_PASSWORD).response.status_code == 200, browser.trail()
                second = browser.follow(apps[1].external_url + "/page")  # single sign-on: no password
                assert second.status_code == 200 and second.headers.get("x-upstream") == "echo", browser.trail()
                cookies = [{app.cookie_name: browser.cookie(app.cookie_name)} for app in apps]

                def page(index: int) -> httpx.Response:  # the application's page through outpost ``index``
                    return httpx.get(f"{outposts[index].url}/page", timeout=5, cookies=cookies[index],
                                     headers={"Host": apps[index].external_url.split("//")[1]})

                assert [page(0).status_code, page(1).status_code] == [200, 200]
                end_session(kind, a, api, browser, user)
                started = time.monotonic()
                with ThreadPoolExecutor(2) as pool:  # both outposts polled at once
                    delays = list(pool.map(lambda i: refusal_delay(lambda: page(i), started), (0, 1)))
            # an ended session: to the login (proxy mode, traefik) or 401 (nginx); a deactivated user keeps a session
            # (as in authentik) that every application refuses: 403
            expected = {"proxy": 403, "nginx": 403} if kind == "deactivate" else {"proxy": 302, "nginx": 401}
            for (_, answer), app in zip(delays, apps, strict=True):
                assert answer.status_code == expected["proxy"], (kind, answer.status_code, answer.text)
                if answer.status_code == 302:
                    assert answer.headers["location"].startswith(app.external_url + "/outpost.goauthentik.io/start")
            for index, outpost in enumerate(outposts):
                nginx = httpx.get(outpost.url + "/outpost.goauthentik.io/auth/nginx", timeout=5, cookies=cookies[index],
                                  headers={"X-Original-URL": apps[index].external_url + "/page"})
                assert nginx.status_code == expected["nginx"], (kind, nginx.status_code, nginx.text)
            figures[kind] = [round(delay * 1000) for delay, _ in delays]
        print("\nsession ended through replica A, refused by the outpost on A / on B after (ms): " +
              ", ".join(f"{kind} {a_ms} / {b_ms}" for kind, (a_ms, b_ms) in figures.items()))
    finally:
        for outpost in outposts:
            outpost.stop()
        upstream.stop()
        api.close()
