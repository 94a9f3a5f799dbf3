"""``python -m bench scale``: the scale row (issue 13) -- forward-auth requests/s through one vs two proxy
outposts and password logins/s through one vs two ``ak server`` replicas, each behind the shipped load balancer
(configs/nginx/core-load-balancer.conf, rendered unchanged), in one run, beside a reference measured in the
same run: that nginx load balancer in front of an nginx server answering a static 200.

Topology (loopback, every process started here): PostgreSQL (a fresh database on 127.0.0.1:5432) and Redis
(127.0.0.1:6379, db GATEHOUSE_BENCH_REDIS_DB, default 12) shared by core A and core B; two standalone
``ak outpost proxy`` replicas of one outpost (sessions in Redis, so one cookie is good on both) connected
through the two-core balancer; one nginx per balancer:

* forward auth: wrk -t1 -c32 on ``/outpost.goauthentik.io/auth/nginx`` (akadmin's real proxy session, the
  request nginx's auth_request sends) through the balancer to outpost 1, then to outposts 1 and 2; the
  reference is wrk on the static 200 through the same balancer.
* logins: ``LOGIN_THREADS`` Python threads each doing the flow executor's password login of akadmin (GET,
  identification, password: 5 requests; fresh cookies, a kept connection) for ``--seconds``, through the
  balancer to core A, then to cores A and B; the reference is the same threads sending 5 requests per
  "login" to the static 200 through the balancer (the driver's own ceiling).

No thresholds: the machine's cores are shared by the driver, wrk, nginx, the replicas, PostgreSQL, Redis and
whatever else runs (the output says how many there are and the load average); on 2 cores a second replica
mostly shows what a second process costs, not what a second machine gives. BENCH_SCALE_SECONDS shortens it;
BENCH_SCALE_DATABASE names the PostgreSQL database (created and dropped here).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.forward_auth import NGINX, WRK, check_allowed, create_outpost, login, parse_wrk
from tests.e2e.support.render import render
from tests.outposts.test_link_e2e import ADMIN_TOKEN, admin_client, redis_available
from tests.support.outpost import OutpostProcess
from tests.support.postgres import machine_postgres_answers, wait_port
from tests.support.server import free_port, start_core

SECONDS = int(os.environ.get("BENCH_SCALE_SECONDS", "6"))
WARMUP_S = 1
CONNECTIONS = 32
LOGIN_THREADS = 8
PASSWORD = "bench-password-1"  # noqa: S105 - the bench's throwaway akadmin
REDIS_DB = int(os.environ.get("GATEHOUSE_BENCH_REDIS_DB", "12"))
DATABASE = os.environ.get("BENCH_SCALE_DATABASE", "gatehouse_bench_scale")
PG = {"AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": "5432",
      "AUTHENTIK_POSTGRESQL__USER": "postgres"}
EXECUTOR = "/api/v3/flows/executor/default-authentication-flow/"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=SECONDS, help=f"per measured case (default {SECONDS})")
    parser.add_argument("--threads", type=int, default=LOGIN_THREADS,
                        help=f"concurrent logins (default {LOGIN_THREADS})")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 60 or not 1 <= args.threads <= 64:
        parser.error("--seconds: 1 to 60, --threads: 1 to 64")
    return args


class Balancer:
    """One nginx running configs/nginx/core-load-balancer.conf for two backends (the same one twice for
    "one replica"), optionally with a server of its own answering a static 200 (the reference's backend)."""

    def __init__(self, workdir: Path, backends: list[str] | None):
        self.workdir, self.port = workdir, free_port()
        static = "" if backends else f"127.0.0.1:{free_port()}"
        backends = backends or [static]
        site = render("nginx/core-load-balancer.conf", workdir / "site.conf",
                      {"LISTEN": f"127.0.0.1:{self.port}", "CORE_1": backends[0], "CORE_2": backends[-1]})
        temp = ""
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (workdir / "temp" / sub).mkdir(parents=True, exist_ok=True)
            temp += f"    {sub}_temp_path {workdir / 'temp' / sub};\n"
        own = f"    server {{ listen {static}; location / {{ return 200 \"ok\\n\"; }} }}\n" if static else ""
        main = workdir / "nginx.conf"
        main.write_text(("user root root;\n" if os.geteuid() == 0 else "")
                        + f"daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
                        f"error_log {workdir / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
                        f"http {{\n    access_log off;\n{temp}{own}    include {site};\n}}\n")
        self.process = subprocess.Popen([NGINX, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c",
                                         str(main)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.port, "nginx", self.process, workdir / "error.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def wrk_rps(label: str, url: str, headers: dict[str, str], seconds: int) -> float:
    argv = [WRK, "-t1", f"-c{CONNECTIONS}", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    subprocess.run([*argv, f"-d{WARMUP_S}s", url], check=True, capture_output=True, timeout=WARMUP_S + 30)
    done = subprocess.run([*argv, f"-d{seconds}s", url], check=True, capture_output=True, text=True,
                          timeout=seconds + 30)
    result = parse_wrk(label, done.stdout)
    bad = f", {result.bad} BAD answers/errors" if result.bad else ""
    print(f"  ran {label}: {result.rps:,.0f} rps, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms{bad}",
          flush=True)
    return result.rps


def password_login(browser: httpx.Client) -> None:
    browser.cookies.clear()  # a new visitor each time (the connection is kept, as a browser's would be)
    browser.get(EXECUTOR).raise_for_status()
    answer = browser.post(EXECUTOR, json={"component": "ak-stage-identification", "uid_field": "akadmin"})
    if answer.json().get("component") != "ak-stage-password":
        raise RuntimeError(f"identification: {answer.text[:200]}")
    done = browser.post(EXECUTOR, json={"component": "ak-stage-password", "password": PASSWORD})
    if done.json().get("component") != "xak-flow-redirect":
        raise RuntimeError(f"password: {done.text[:200]}")


def floor_login(browser: httpx.Client) -> None:
    """As many requests as a login (5: GET, POST and the GET after its 302, twice over) to the static 200."""
    browser.cookies.clear()
    for _ in range(5):
        browser.get("/").raise_for_status()


def rate(label: str, one, base: str, threads: int, seconds: int) -> float:
    """``one(client)`` in ``threads`` threads (a client each) for ``seconds``: completed per second (errors are
    reported)."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as warm:
        one(warm)  # the first login fills caches
    done, errors, lock = [0], [], threading.Lock()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as browser:
            while time.monotonic() < deadline:
                try:
                    one(browser)
                    with lock:
                        done[0] += 1
                except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                    errors.append(repr(exc)[:120])

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    per_s = done[0] / (time.monotonic() - started)
    print(f"  ran {label}: {per_s:,.1f}/s ({done[0]} in {seconds} s, {threads} threads)"
          + (f", {len(errors)} ERRORS e.g. {errors[0]}" if errors else ""), flush=True)
    return per_s


def database(action: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        if action == "create":
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def run(tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**PG, "AUTHENTIK_POSTGRESQL__NAME": DATABASE, "AUTHENTIK_REDIS__HOST": "127.0.0.1",
           "AUTHENTIK_REDIS__PORT": "6379", "AUTHENTIK_REDIS__DB": str(REDIS_DB)}
    stop: list = []
    database("create")
    try:
        cores = []
        for name in ("a", "b"):  # one after the other: the first applies the migrations
            cores.append(start_core(tmp / f"core-{name}", env=env, bootstrap_token=ADMIN_TOKEN,
                                    bootstrap_password=PASSWORD))
            stop.append(cores[-1])
        core_one = Balancer(tmp / "lb-core-1", [f"127.0.0.1:{cores[0].http_port}"])
        core_two = Balancer(tmp / "lb-core-2", [f"127.0.0.1:{c.http_port}" for c in cores])
        static = Balancer(tmp / "lb-static", None)
        stop += [core_one, core_two, static]
        outposts = [OutpostProcess(tmp / f"outpost-{n}", core_two.url, "", redis_db=REDIS_DB) for n in (1, 2)]
        outpost_one = Balancer(tmp / "lb-outpost-1", [outposts[0].address])
        outpost_two = Balancer(tmp / "lb-outpost-2", [o.address for o in outposts])
        stop += [outpost_one, outpost_two]
        external = f"http://app.test:{outpost_two.port}"
        with admin_client(cores[0]) as api:
            token, _ = create_outpost(api, external)
        for outpost in outposts:
            outpost.token = token
            outpost.start()
            stop.append(outpost)
        for outpost in outposts:
            outpost.wait_connected()
        cookie = login(core_two.url, outposts[0].url, f"app.test:{outpost_two.port}")
        headers = {"Host": f"app.test:{outpost_two.port}", "Cookie": cookie, "X-Original-URL": external + "/"}
        path = "/outpost.goauthentik.io/auth/nginx"
        for outpost in outposts:  # the cookie is good on both (the session is in Redis)
            check_allowed(outpost.url + path, headers)
        figures = {
            "static": wrk_rps("reference: static 200 through the balancer", static.url + "/", {}, args.seconds),
            "fa1": wrk_rps("forward auth, 1 outpost", outpost_one.url + path, headers, args.seconds),
            "fa2": wrk_rps("forward auth, 2 outposts", outpost_two.url + path, headers, args.seconds),
            "floor_login": rate("reference: 5 requests per 'login' to the static 200", floor_login, static.url,
                                args.threads, args.seconds),
            "login1": rate("password logins, 1 core", password_login, core_one.url, args.threads, args.seconds),
            "login2": rate("password logins, 2 cores", password_login, core_two.url, args.threads, args.seconds),
        }
        return figures
    finally:
        for item in reversed(stop):
            try:
                item.stop()
            except Exception as exc:  # noqa: BLE001 - stop the rest anyway
                print(f"  (stopping {type(item).__name__}: {exc!r})")
        database("drop")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv or [])
    for what, present in (("wrk", os.path.exists(WRK)), ("nginx", os.path.exists(NGINX)),
                          ("PostgreSQL on 127.0.0.1:5432", machine_postgres_answers()),
                          ("Redis on 127.0.0.1:6379", redis_available())):
        if not present:
            print(f"  skipped: no {what}")
            return
    print(f"  {os.cpu_count()} cores shared by everything below and whatever else runs (load average before: "
          f"{os.getloadavg()[0]:.2f}); {args.seconds} s per case; wrk -t1 -c{CONNECTIONS}; "
          f"{args.threads} login threads", flush=True)
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-scale-") as tmp:
        f = run(Path(tmp), args)
    print(f"\n  {'case':<42}{'1 replica':>12}{'2 replicas':>12}{'reference':>12}")
    print(f"  {'forward auth, requests/s (outposts)':<42}{f['fa1']:>12,.0f}{f['fa2']:>12,.0f}{f['static']:>12,.0f}")
    print(f"  {'password logins/s (cores)':<42}{f['login1']:>12,.1f}{f['login2']:>12,.1f}"
          f"{f['floor_login']:>12,.1f}")
    print(f"  (reference: the same balancer in front of nginx's static 200; load average after: "
          f"{os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
