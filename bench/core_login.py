"""``python -m bench core_login``: password logins through the flow executor, the token endpoint's rate and the
core's memory, against a real ``ak server`` on a fresh data directory.

- Logins: ``LOGINS`` password logins of one user through ``/api/v3/flows/executor/default-authentication-flow/``
  (GET, POST identification, POST password, each 302 followed as the executor expects, then GET of the flow's
  redirect target), each with fresh cookies. Server time per login is the sum of the server's own
  ``duration_ms`` of those requests (its JSON access log, matched by a per-login User-Agent). The argon2
  verify inside it comes from the core's ``Server-Timing: hash;dur=`` header of the password answer and is
  subtracted login by login: "server time excluding hash". The same verify is also measured apart, in a
  Python with the core's settings (the same hasher and parameters), as a reference. Goal (issue): <= 30 ms per login excluding the hash.
- Token endpoint: ``grant_type=client_credentials`` with a confidential client (client_id + client_secret,
  the client's generated service account), concurrency 1 and 8, ``WRK_SECONDS`` each, with wrk when installed
  (else aiohttp for the same time); and a copy of the client that signs RS256 with the managed RSA key.
- Memory: VmRSS of the server process and its children after start (idle), the peak sampled every 50 ms
  during the logins and the token load, and the kernel's VmHWM. Goal: <= 150 MB. The expression evaluators
  are forks of the server, so the RSS sum counts shared pages again; PSS (each page once) is printed beside.
- References measured in the same run: ``GET /-/health/live/`` (the aiohttp front, no Django) at the same
  concurrencies, a bare argon2 hash (``make_password``), and the floor: ``/-/bench/floor/``, a Django view
  answering 200 through the same middleware and thread pool (the server runs with bench/_floor_settings.py,
  the only settings that route it), by wrk and with a logged-in session.
- Breakdown: bench/_breakdown.py replays each request in a second process through Django's test client and
  prints its queries, SQL time, CPU time and where a profile puts the time (policies, expressions, hash, JWT,
  signing key, events, templates, session).

SQLite first; then PostgreSQL + Redis (the Makefile's PG_ENV, a fresh database) when both answer on 127.0.0.1.
No thresholds: figures are printed for people. BENCH_CORE_LOGINS, BENCH_CORE_SECONDS and BENCH_CORE_DATABASES
(sqlite or postgresql) shorten a run while changing the core.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from tests.support.server import REPO, start_core

LOGINS = int(os.environ.get("BENCH_CORE_LOGINS", "200"))  # fewer for a quick look while changing the core
WARMUP_LOGINS = 5
HASH_ROUNDS = 30
WRK_SECONDS = int(os.environ.get("BENCH_CORE_SECONDS", "5"))
FLOOR_REQUESTS = 300
FLOOR_SETTINGS = "bench._floor_settings"  # core.settings + /-/bench/floor/ (bench/_floor_urls.py)
FLOOR_PATH = "/-/bench/floor/"
CONCURRENCIES = (1, 8)
LOGIN_GOAL_MS = 30.0
RSS_GOAL_MB = 150.0
LOAD_GOAL_MB = 170.0  # issue 14: within 170 MB under load
ADMIN_TOKEN = "bench-core-login-token-0123456789abcdef"  # noqa: S105 - a throwaway bootstrap token
USER, PASSWORD = "bench-user", "bench-Password-1"  # noqa: S105
FLOW = "default-authentication-flow"
STEPS = ("GET plan+identification", "POST identification", "GET password", "POST password (+hash)",
         "GET mfa-skip+login", "GET / (logged in)")
PG_ENV = {"AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": "5432",
          "AUTHENTIK_POSTGRESQL__USER": "postgres", "AUTHENTIK_REDIS__HOST": "127.0.0.1",
          "AUTHENTIK_REDIS__PORT": "6379"}

HASH_SCRIPT = """
import json, os, statistics, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
import django
django.setup()
from django.contrib.auth.hashers import check_password, get_hasher, make_password
rounds = int(sys.argv[1])
hasher = get_hasher("default")
encoded = make_password("bench-Password-1")
make, verify, verify_cpu = [], [], []
for _ in range(rounds):
    t = time.perf_counter(); make_password("bench-Password-1"); make.append(time.perf_counter() - t)
    t, c = time.perf_counter(), time.process_time()
    assert check_password("bench-Password-1", encoded)
    verify.append(time.perf_counter() - t); verify_cpu.append(time.process_time() - c)
params = {k: getattr(hasher, k, None) for k in ("time_cost", "memory_cost", "parallelism")}
print(json.dumps({"algorithm": hasher.algorithm, "params": params, "make_ms": [x * 1000 for x in make],
                  "verify_ms": [x * 1000 for x in verify], "verify_cpu_ms": [x * 1000 for x in verify_cpu]}))
"""


# --- small helpers ----------------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def reachable(*ports: int) -> bool:
    try:
        for port in ports:
            socket.create_connection(("127.0.0.1", port), 2).close()
        return True
    except OSError:
        return False


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return pids


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) summed over ``pid`` and its children, in MB. The expression evaluators are forks of the
    server: their RSS counts the pages they share with it again (see pss_mb)."""
    rss = hwm = 0
    for each in process_tree(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, hwm / 1024


def pss_mb(pid: int) -> tuple[float, int]:
    """(Pss summed over ``pid`` and its children in MB, the number of processes): each shared page counted once
    in total, so forked evaluators add only what they changed."""
    pss, tree = 0, process_tree(pid)
    for each in tree:
        try:
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return pss / 1024, len(tree)


def cpu_ms(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children so far (all threads), in ms."""
    ticks = 0
    for each in process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """The highest VmRSS (process tree) seen while running, sampled every 50 ms."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.peak_pss, self.processes = pid, 0.0, 0.0, 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, memory_mb(self.pid)[0])
            pss, processes = pss_mb(self.pid)
            self.peak_pss, self.processes = max(self.peak_pss, pss), max(self.processes, processes)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.peak = max(self.peak, memory_mb(self.pid)[0])


# --- set-up through the REST API --------------------------------------------------------------------------------


def set_up(api: httpx.Client) -> dict:
    """A user with a password and a confidential OAuth2 client with an application; returns the client's data."""
    user = api.post("/api/v3/core/users/", json={"username": USER, "name": "Bench User",
                                                 "email": "bench@example.com"})
    user.raise_for_status()
    api.post(f"/api/v3/core/users/{user.json()['pk']}/set_password/",
             json={"password": PASSWORD}).raise_for_status()
    scopes = api.get("/api/v3/propertymappings/provider/scope/", params={"page_size": 100}).json()["results"]
    wanted = [m["pk"] for m in scopes if m["scope_name"] in ("openid", "profile", "email")]
    flow = api.get("/api/v3/flows/instances/", params={"designation": "authorization"}).json()["results"][0]["pk"]
    client = {"client_id": "bench-client", "client_secret": "bench-secret-" + "s" * 40}
    provider = api.post("/api/v3/providers/oauth2/", json={
        "name": "bench", "authorization_flow": flow, "client_type": "confidential", **client,
        "redirect_uris": [{"matching_mode": "strict", "url": "https://bench.example.com/cb"}],
        "property_mappings": wanted})
    if provider.status_code != 201:
        raise RuntimeError(f"creating the OAuth2 provider failed: {provider.status_code} {provider.text[:300]}")
    app = api.post("/api/v3/core/applications/", json={"name": "Bench", "slug": "bench",
                                                       "provider": provider.json()["pk"]})
    if app.status_code != 201:
        raise RuntimeError(f"creating the application failed: {app.status_code} {app.text[:300]}")
    return client


# --- logins -----------------------------------------------------------------------------------------------------


def hash_ms(response: httpx.Response) -> float | None:
    """The core's ``Server-Timing: hash;dur=<ms>`` (core/flows/stages/password.py), if it sent one."""
    found = re.search(r"(?:^|,)\s*hash;dur=([\d.]+)", response.headers.get("server-timing", ""))
    return float(found.group(1)) if found else None


def one_login(http: httpx.Client, agent: str) -> float | None:
    """One login with fresh cookies; returns the server's own timing of the password hash (ms), if sent."""
    http.cookies.clear()
    headers = {"User-Agent": agent}
    url = f"/api/v3/flows/executor/{FLOW}/?query="
    hashed: list[float] = []

    def answer(body: dict) -> dict:
        response = http.post(url, json=body, headers=headers)
        if (ms := hash_ms(response)) is not None:
            hashed.append(ms)
        if response.status_code == 302:  # the stage passed: the executor answers 302 to itself
            response = http.get(url, headers=headers)
        response.raise_for_status()
        return response.json()

    first = http.get(url, headers=headers).json()
    if first.get("component") != "ak-stage-identification":
        raise RuntimeError(f"expected the identification stage, got {first}")
    step = answer({"component": "ak-stage-identification", "uid_field": USER})
    if step.get("component") != "ak-stage-password":
        raise RuntimeError(f"expected the password stage, got {step}")
    done = answer({"component": "ak-stage-password", "password": PASSWORD})
    if done.get("component") != "xak-flow-redirect":
        raise RuntimeError(f"the login did not finish: {done}")
    landing = http.get(done["to"], headers=headers)  # logged in: "/" sends to the portal, not to the login flow
    if landing.status_code >= 400 or FLOW in landing.headers.get("location", ""):
        raise RuntimeError(f"the session does not work after the login: {landing.status_code} "
                           f"{landing.headers.get('location')}")
    return sum(hashed) if hashed else None


def server_times(log: Path, prefix: str) -> dict[str, list[float]]:
    """The access log's duration_ms of each request, in order, per User-Agent starting with ``prefix``."""
    totals: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if prefix not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        agent = entry.get("user_agent", "")
        if agent.startswith(prefix) and "duration_ms" in entry:
            totals.setdefault(agent, []).append(float(entry["duration_ms"]))
    return totals


def logins(core, count: int) -> tuple[list[float], list[list[float]], list[float], float]:
    """(client wall ms, server ms of each request, server-reported hash ms) per login, warm-up logins
    excluded, and the server's CPU time per login (ms, all its threads)."""
    prefix = f"bench-login-{time.monotonic_ns()}-"
    wall: dict[str, float] = {}
    hashed: dict[str, float] = {}
    with httpx.Client(base_url=core.url, timeout=30.0) as http:
        for i in range(WARMUP_LOGINS):
            one_login(http, f"bench-warmup-{i}")
        cpu_before = cpu_ms(core.pid)
        for i in range(count):
            agent = f"{prefix}{i:05d}"
            started = time.perf_counter()
            ms = one_login(http, agent)
            wall[agent] = (time.perf_counter() - started) * 1000
            if ms is not None:
                hashed[agent] = ms
        cpu_per_login = (cpu_ms(core.pid) - cpu_before) / count
    def complete(found: dict) -> int:
        return sum(len(each) == len(STEPS) for each in found.values())

    deadline = time.monotonic() + 5
    server = server_times(core.log_path, prefix)
    while complete(server) < count and time.monotonic() < deadline:  # the log is written asynchronously
        time.sleep(0.1)
        server = server_times(core.log_path, prefix)
    if complete(server) < count:
        raise RuntimeError(f"the access log has {complete(server)} of {count} logins with {len(STEPS)} requests "
                           "each; is it JSON at info level?")
    return ([wall[a] for a in sorted(wall)], [server[a] for a in sorted(wall)],
            [hashed[a] for a in sorted(wall) if a in hashed], cpu_per_login)


def floor_times(core, count: int) -> list[float]:
    """The server's duration_ms of ``count`` GETs of the floor view (a Django view answering 200 through the same
    middleware and thread pool), each with the session cookie of a logged-in user like the executor's requests."""
    agent = f"bench-floor-{time.monotonic_ns()}"
    with httpx.Client(base_url=core.url, timeout=30.0) as http:
        one_login(http, "bench-floor-login")  # the floor carries a session like the login's requests
        for _ in range(count):
            http.get(FLOOR_PATH, headers={"User-Agent": agent}).raise_for_status()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = server_times(core.log_path, agent).get(agent, [])
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise RuntimeError(f"the access log has {len(found)} of {count} floor requests")


def breakdown(env: dict, client: dict) -> dict:
    """bench/_breakdown.py in a Python with the server's environment (its data directory or database)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as spec:
        json.dump(client, spec)
        spec.flush()
        out = subprocess.run([sys.executable, "-m", "bench._breakdown", spec.name], cwd=REPO,
                             env={**env, "AUTHENTIK_LOG_LEVEL": "warning"}, capture_output=True, text=True,
                             timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the breakdown failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def hash_times(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", HASH_SCRIPT, str(HASH_ROUNDS)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"measuring argon2 failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- request rates ----------------------------------------------------------------------------------------------

WRK_LUA = """wrk.method = "{method}"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def rate_wrk(url: str, concurrency: int, seconds: int, body: str | None, bearer: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
        if body is not None or bearer is not None:
            script = Path(tmp) / "request.lua"
            lua = WRK_LUA.format(method="GET" if body is None else "POST", body=body or "")
            if bearer is not None:
                lua += f'wrk.headers["Authorization"] = "Bearer {bearer}"\n'
            script.write_text(lua)
            args += ["-s", str(script)]
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if out.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({out.returncode}): {text[-600:]} {out.stderr[-600:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.MULTILINE)
    return {"rps": float(found.group(1)), "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else "", "p50": p50.group(1) if p50 else "?"}


def rate_aiohttp(url: str, concurrency: int, seconds: int, body: str | None, bearer: str | None = None) -> dict:
    import aiohttp

    async def run() -> dict:
        done, bad, latencies = 0, 0, []
        deadline = time.monotonic() + seconds
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        async with aiohttp.ClientSession() as session:
            async def worker():
                nonlocal done, bad
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    if body is None:
                        response = await session.get(url, headers=headers)
                    else:
                        response = await session.post(url, data=body, headers=headers)
                    async with response:
                        await response.read()
                        bad += response.status >= 300
                    latencies.append(time.perf_counter() - started)
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.monotonic() - started
        return {"rps": done / elapsed, "non2xx": bad, "socket_errors": "",
                "p50": f"{statistics.median(latencies) * 1000:.2f}ms" if latencies else "?"}

    return asyncio.run(run())


def rate(url: str, concurrency: int, body: str | None = None, bearer: str | None = None) -> dict:
    tool = rate_wrk if shutil.which("wrk") else rate_aiohttp
    return tool(url, concurrency, WRK_SECONDS, body, bearer)


# --- one run ----------------------------------------------------------------------------------------------------


def run(label: str, env: dict | None) -> None:
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-login-") as tmp:
        core = start_core(Path(tmp), env={**(env or {}), "DJANGO_SETTINGS_MODULE": FLOOR_SETTINGS},
                          bootstrap_token=ADMIN_TOKEN, bootstrap_password="bench-admin-1")
        try:
            with httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              timeout=30.0) as api:
                client = set_up(api)
            time.sleep(2)  # let start-up settle before "idle"
            idle_rss, _ = memory_mb(core.pid)
            idle_pss, idle_processes = pss_mb(core.pid)

            hashing = hash_times(core.env)
            verify_p50 = statistics.median(hashing["verify_ms"])
            with RssSampler(core.pid) as login_rss:
                wall, requests, in_server_hash, login_cpu = logins(core, LOGINS)

            token_body = urlencode({"grant_type": "client_credentials", "scope": "openid profile", **client})
            check = httpx.post(core.url + "/application/o/token/", content=token_body,
                               headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
            if check.status_code != 200 or "access_token" not in check.json():
                raise RuntimeError(f"client_credentials refused: {check.status_code} {check.text[:300]}")
            floor = floor_times(core, FLOOR_REQUESTS)
            found = breakdown(core.env, client)
            parts, rs256 = found["requests"], found["rs256_client"]
            token_rates, health_rates, floor_rates = {}, {}, {}
            with RssSampler(core.pid) as token_rss:
                for c in CONCURRENCIES:
                    token_rates[c] = rate(core.url + "/application/o/token/", c, token_body)
                rs256_body = urlencode({"grant_type": "client_credentials", "scope": "openid profile", **rs256})
                rs256_rate = rate(core.url + "/application/o/token/", 1, rs256_body)
                access = check.json()["access_token"]
                userinfo_rate = rate(core.url + "/application/o/userinfo/", 1, bearer=access)
                introspect_rate = rate(core.url + "/application/o/introspect/", 1,
                                       urlencode({"token": access, **client}))
            for c in CONCURRENCIES:
                health_rates[c] = rate(core.url + "/-/health/live/", c)
                floor_rates[c] = rate(core.url + FLOOR_PATH, c, "")
            _, hwm = memory_mb(core.pid)
        finally:
            core.stop()

    server = [sum(r) for r in requests]
    steps = [statistics.median(column) for column in zip(*requests, strict=False)]
    if len(in_server_hash) == len(server):  # the server's own hash timing, login by login
        excl = [s - h for s, h in zip(server, in_server_hash, strict=True)]
        hash_label = (f"Server-Timing hash p50 {statistics.median(in_server_hash):.1f} ms, "
                      f"p95 {pct(in_server_hash, 95):.1f} ms")
    else:  # an older core without Server-Timing: subtract the separately measured verify
        excl = [s - verify_p50 for s in server]
        hash_label = f"verify measured apart, p50 {verify_p50:.1f} ms"
    tool = "wrk" if shutil.which("wrk") else "aiohttp"
    p = hashing["params"]
    print(f"[{label}] reference: bare argon2 hash (make_password, {hashing['algorithm']} t={p['time_cost']} "
          f"m={p['memory_cost']} KiB p={p['parallelism']}): p50 {statistics.median(hashing['make_ms']):.1f} ms; "
          f"verify p50 {verify_p50:.1f} ms, p95 {pct(hashing['verify_ms'], 95):.1f} ms ({HASH_ROUNDS} rounds)")
    for c in CONCURRENCIES:
        h = health_rates[c]
        print(f"[{label}] reference: GET /-/health/live/, concurrency {c}: {h['rps']:.0f} req/s "
              f"(p50 {h['p50']}, {tool}, {WRK_SECONDS} s)")
    for c in CONCURRENCIES:
        f = floor_rates[c]
        print(f"[{label}] floor: POST /-/bench/floor/ (a Django view answering 200, same middleware and thread pool), "
              f"concurrency {c}: {f['rps']:.0f} req/s (p50 {f['p50']}, {tool}, {WRK_SECONDS} s)")
    print(f"[{label}] floor: GET /-/bench/floor/ with a logged-in session, server time p50 {statistics.median(floor):.2f} ms, "
          f"p95 {pct(floor, 95):.2f} ms ({len(floor)} requests); x6 = {6 * statistics.median(floor):.1f} ms per login")
    print(f"[{label}] password login through the executor ({LOGINS} logins, 6 requests each): "
          f"server p50 {statistics.median(server):.1f} ms, p95 {pct(server, 95):.1f} ms; "
          f"client wall p50 {statistics.median(wall):.1f} ms, p95 {pct(wall, 95):.1f} ms")
    if len(steps) == len(STEPS):
        print(f"[{label}] server ms per request, p50: " + ", ".join(
            f"{name} {ms:.1f}" for name, ms in zip(STEPS, steps, strict=True)))
    verdict = "within goal" if statistics.median(excl) <= LOGIN_GOAL_MS else "OVER goal"
    print(f"[{label}] login server time excluding the argon2 verify ({hash_label}): "
          f"p50 {statistics.median(excl):.1f} ms, p95 {pct(excl, 95):.1f} ms "
          f"(goal <= {LOGIN_GOAL_MS:g} ms: {verdict})")
    hash_cpu = statistics.median(hashing["verify_cpu_ms"])
    print(f"[{label}] server CPU per login (all threads): {login_cpu:.1f} ms; argon2 verify CPU measured apart "
          f"{hash_cpu:.1f} ms; CPU excluding the hash ~{login_cpu - hash_cpu:.1f} ms")
    for c in CONCURRENCIES:
        t = token_rates[c]
        extra = f", {t['non2xx']} non-2xx" if t["non2xx"] else ""
        extra += f", {t['socket_errors']}" if t["socket_errors"] else ""
        print(f"[{label}] token endpoint (client_credentials, confidential client), concurrency {c}: "
              f"{t['rps']:.0f} req/s (p50 {t['p50']}{extra}; {tool}, {WRK_SECONDS} s)")
    print(f"[{label}] breakdown (bench/_breakdown.py: Django's test client in a second process, no HTTP; p50 ms "
          f"without a profiler, and the thread's CPU time; parts are inclusive ms under cProfile, which about doubles them):")
    for name, row in parts.items():
        inner = ", ".join(f"{k} {v:.1f}" for k, v in row["parts_ms"].items())
        print(f"[{label}]   {name}: {row['queries']:.0f} queries ({row['sql_ms']:.1f} ms in SQL), {row['ms']:.1f} ms "
              f"(CPU {row['cpu_ms']:.1f} ms); "
              f"profiled {row['profiled_ms']:.1f} ms: {inner}")
        if not name.startswith(("GET", "POST")):  # the machine endpoints: which statements
            print(f"[{label}]     statements: {', '.join(row.get('statements', []))}")
    extra = f", {rs256_rate['non2xx']} non-2xx" if rs256_rate["non2xx"] else ""
    print(f"[{label}] token endpoint, the same client signing RS256 (the managed RSA key), concurrency 1: "
          f"{rs256_rate['rps']:.0f} req/s (p50 {rs256_rate['p50']}{extra}; {tool}, {WRK_SECONDS} s)")
    for name, found in (("userinfo (GET, Bearer, openid profile)", userinfo_rate),
                        ("introspection (POST, client_secret_post)", introspect_rate)):
        extra = f", {found['non2xx']} non-2xx" if found["non2xx"] else ""
        print(f"[{label}] {name}, concurrency 1: {found['rps']:.0f} req/s (p50 {found['p50']}{extra}; {tool}, "
              f"{WRK_SECONDS} s)")
    peak = max(login_rss.peak, token_rss.peak)
    verdict = "within goal" if max(idle_rss, peak) <= RSS_GOAL_MB else "OVER goal"
    print(f"[{label}] core RSS: idle {idle_rss:.0f} MB, peak under logins {login_rss.peak:.0f} MB, under the "
          f"token load {token_rss.peak:.0f} MB, VmHWM {hwm:.0f} MB (goal <= {RSS_GOAL_MB:g} MB: {verdict})")
    verdict = "within goal" if max(idle_pss, login_rss.peak_pss, token_rss.peak_pss) <= LOAD_GOAL_MB else "OVER goal"
    print(f"[{label}] core PSS (shared pages counted once; the forked expression evaluators add what they changed): "
          f"idle {idle_pss:.0f} MB ({idle_processes} processes), peak under logins {login_rss.peak_pss:.0f} MB, under "
          f"the token load {token_rss.peak_pss:.0f} MB ({token_rss.processes} processes) (goal under load <= "
          f"{LOAD_GOAL_MB:g} MB: {verdict})")


def main() -> None:
    only = os.environ.get("BENCH_CORE_DATABASES", "")  # "sqlite" or "postgresql": one of the two runs
    if only != "postgresql":
        run("sqlite", None)
    if only == "sqlite":
        return
    if reachable(5432, 6379):
        run("postgresql+redis", PG_ENV)
    else:
        print("[postgresql+redis] skipped: PostgreSQL 127.0.0.1:5432 and Redis 127.0.0.1:6379 are needed")


if __name__ == "__main__":
    main()
