"""``python -m bench forward_auth``: forward-auth throughput and latency with ``wrk``, against a floor measured
in the same run, and the standalone outpost's memory (issue 3, last "Done when" bullet).

A real ``ak server`` (fresh data directory) and a real ``ak outpost proxy``; akadmin logs in for real (flow
executor API, /start and /callback), so the cookie, the session and the identity headers are the outpost's own.
nginx is configs/nginx/*.conf rendered unchanged inside bench/forward_auth_nginx.conf; wrk -t1 -c32.

* (a)  the floor: nginx ``auth_request`` to a second nginx server that answers 200, over keep-alive.
* (b)  nginx ``auth_request`` to the outpost with a valid session; (c) the outpost's endpoint directly (wrk
  keeps its connections alive). configs/nginx/outpost-location.conf as shipped talks HTTP/1.0 with
  ``Connection: close`` to its upstream (a TCP connection per subrequest); the "keep-alive" rows add
  ``proxy_http_version 1.1`` and an empty ``Connection`` to that location, through an upstream with
  ``keepalive``. Both are measured, for the floor too.
* (b) again with the outpost on Redis holding 1,000,000 more sessions (a dedicated Redis DB, filled with
  the outpost's own RedisStore.put in pipelined batches, deleted afterwards): once with the logged-in cookie
  (the store's in-process LRU answers) and once cycling through distinct cookies (a Redis GET per request).
* ``ak outpost proxy --workers 1`` and ``--workers 2`` (Redis store).
* VmRSS / VmHWM of the outpost process(es) from /proc, idle and after the load.

``GATEHOUSE_BENCH_FA_REDIS=0`` skips the Redis cases (the 1,000,000-session fill takes minutes).

No thresholds: figures are printed next to the issue's goals for people to read. The machine's cores are
shared by wrk, nginx, the outpost (and anything else running): the output says how many there are.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from bench.measure import cpu_seconds
from tests.e2e.support.render import render, render_text
from tests.outposts.test_link_e2e import ADMIN_TOKEN, admin_client, redis_available
from tests.support.outpost import OutpostProcess
from tests.support.server import free_port, start_core

WRK = os.environ.get("GATEHOUSE_WRK", "/usr/bin/wrk")
NGINX = os.environ.get("GATEHOUSE_NGINX", "/usr/sbin/nginx")
TEMPLATE = Path(__file__).with_name("forward_auth_nginx.conf")
CONNECTIONS = 32
DURATION_S = 8
WARMUP_S = 1
APP_HOST = "app.test"
PASSWORD = "bench-password-1"  # noqa: S105 - the bench's throwaway akadmin
AUTH_FLOW = "default-provider-authorization-implicit-consent"
REDIS_DB = int(os.environ.get("GATEHOUSE_BENCH_REDIS_DB", "12"))
REDIS_SESSIONS = 1_000_000
FILL_BATCH = 2_000
FILL_BUDGET_S = 300.0  # the fill stops there and says how many it wrote
DISTINCT_COOKIES = 30_000  # more than wrk sends in one run at the rates seen: every lookup misses the LRU
GOALS = "goals (issue 3): b/a >= 0.6 with one outpost process, p99 <= 5 ms at 32 connections, RSS <= 40 MB"


# -- wrk ---------------------------------------------------------------------------------------------------

@dataclass
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx/3xx answers and socket errors
    cpu_us: float = float("nan")  # outpost CPU time (user + system, every process) per request


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_LUA_COOKIES = """
local cookies = {}
for line in io.lines("${COOKIES}") do cookies[#cookies + 1] = line end
local i = math.random(#cookies)
request = function()
  i = i % #cookies + 1
  wrk.headers["Cookie"] = cookies[i]
  return wrk.format()
end
"""


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"wrk latency {text!r}: expected a number with us, ms or s")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(label: str, output: str) -> Result:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match:
            return match.group(1)
        if default is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{output}")
        return default

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    bad = int(find(r"Non-2xx or 3xx responses: (\d+)", "0")) + (sum(map(int, errors.groups())) if errors else 0)
    return Result(label, float(find(r"^Requests/sec:\s+([\d.]+)")), _ms(find(r"^\s+50%\s+(\S+)")),
                  _ms(find(r"^\s+99%\s+(\S+)")), int(find(r"^\s+(\d+) requests in")), bad)


def wrk(label: str, url: str, headers: dict[str, str], *, script: Path | None = None,
        pids: list[int] = ()) -> Result:
    argv = [WRK, "-t1", f"-c{CONNECTIONS}", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    subprocess.run([*argv, f"-d{WARMUP_S}s", url], check=True, capture_output=True, timeout=WARMUP_S + 30)
    cpu = cpu_seconds(*pids)
    done = subprocess.run([*argv, f"-d{DURATION_S}s", url], check=True, capture_output=True, text=True,
                          timeout=DURATION_S + 30)
    result = parse_wrk(label, done.stdout)
    if pids and result.requests:
        result.cpu_us = (cpu_seconds(*pids) - cpu) / result.requests * 1e6
    print(f"  ran {label}: {result.rps:,.0f} rps, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
          + (f", outpost CPU {result.cpu_us:.0f} us/request" if pids else "")
          + (f", {result.bad} BAD answers/errors" if result.bad else ""), flush=True)
    return result


# -- nginx ---------------------------------------------------------------------------------------------------

KEEPALIVE_LINES = '    proxy_http_version      1.1;\n    proxy_set_header        Connection "";\n'


class Nginx:
    """One nginx per case, always on ``port`` (the provider's external_host names it)."""

    def __init__(self, workdir: Path, port: int, outpost: str):
        self.workdir, self.port, self.outpost = workdir, port, outpost
        self.floor_port, self.app_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"{APP_HOST}:{self.port}"

    def start(self, auth: str, keepalive: bool) -> None:
        """``auth``: "floor" or "outpost"; ``keepalive``: to the auth endpoint (else configs as shipped)."""
        self.stop()
        work = self.workdir / f"{auth}-{'ka' if keepalive else 'close'}"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / "temp" / sub).mkdir(parents=True, exist_ok=True)
        address = {"floor": f"127.0.0.1:{self.floor_port}", "outpost": self.outpost}[auth]
        upstream = {"floor": "bench_floor", "outpost": "bench_outpost"}[auth]
        snippets = work / "snippets"
        location = render("nginx/outpost-location.conf", snippets / "outpost-location.conf",
                          {"OUTPOST": upstream if keepalive else address})
        if keepalive:
            text, count = re.subn(r"(\n\s*proxy_pass\s+http://\S+;\n)", lambda m: m.group(1) + KEEPALIVE_LINES,
                                  location.read_text(), count=1)
            if count != 1:
                raise RuntimeError(f"{location}: no proxy_pass line to add keep-alive after; update the bench")
            location.write_text(text)
        values = {"LISTEN": f"127.0.0.1:{self.port}", "APP_HOST": APP_HOST, "UPSTREAM": "bench_app",
                  "SNIPPETS": str(snippets), "OUTPOST": upstream if keepalive else address}
        render("nginx/auth-request.conf", snippets / "auth-request.conf", values)
        app = render("nginx/app.conf", work / "app.conf", values)
        main = work / "nginx.conf"
        main.write_text(render_text(TEMPLATE.read_text(), {
            "WORKDIR": str(work), "FLOOR_PORT": str(self.floor_port), "APP_PORT": str(self.app_port),
            "OUTPOST_ADDRESS": self.outpost, "APP_CONF": str(app)}, str(TEMPLATE)))
        if os.geteuid() == 0:
            main.write_text("user root root;\n" + main.read_text())
        log = (work / "stdout.log").open("wb")
        self.process = subprocess.Popen([NGINX, "-p", str(work), "-e", str(work / "error.log"), "-c", str(main)],
                                        cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(work / 'error.log').read_text(errors='replace')[-2000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/outpost.goauthentik.io/ping", timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx not answering on {self.port} within 15 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: lets the port go cleanly for the next case
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# -- the outpost ---------------------------------------------------------------------------------------------

def _proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _role(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return "resource tracker" if "resource_tracker" in cmdline else "worker"


class BenchOutpost(OutpostProcess):
    """The shared launcher (tests/support/outpost.py) with the memory figures the bench prints."""

    def memory(self) -> str:
        """VmRSS (of which RssAnon: not shared libraries) and VmHWM of each process, in MB."""
        parts = []
        for pid in self.pids():
            role = "main" if pid == self.pids()[0] else _role(pid)
            mb = {key: _proc_kb(pid, key) / 1024 for key in ("VmRSS", "RssAnon", "VmHWM")}
            parts.append(f"{role} {mb['VmRSS']:.1f} MB (anon {mb['RssAnon']:.1f}), peak {mb['VmHWM']:.1f} MB")
        return "; ".join(parts)


# -- core set-up and a real login ----------------------------------------------------------------------------

def create_outpost(api: httpx.Client, external_host: str) -> tuple[str, str]:
    """Proxy provider (forward_single) + application + outpost; returns (outpost token, application slug)."""
    flows = api.get("/api/v3/flows/instances/", params={"slug": AUTH_FLOW}).json()["results"]
    if not flows:
        raise RuntimeError(f"no flow {AUTH_FLOW!r} on the fresh core; are the default blueprints applied?")
    provider = api.post("/api/v3/providers/proxy/", json={
        "name": "bench", "external_host": external_host, "internal_host": "http://127.0.0.1:9",
        "authorization_flow": flows[0]["pk"], "mode": "forward_single"})
    provider.raise_for_status()
    api.post("/api/v3/core/applications/", json={"name": "bench", "slug": "bench",
                                                 "provider": provider.json()["pk"]}).raise_for_status()
    outpost = api.post("/api/v3/outposts/instances/", json={"name": "bench", "type": "proxy",
                                                           "providers": [provider.json()["pk"]]})
    outpost.raise_for_status()
    key = api.get(f"/api/v3/core/tokens/{outpost.json()['token_identifier']}/view_key/")
    key.raise_for_status()
    return key.json()["key"], "bench"


def _cookie(response: httpx.Response) -> str:
    value = response.headers.get("set-cookie", "")
    if not value.startswith("authentik_proxy_"):
        raise RuntimeError(f"{response.request.url}: expected an authentik_proxy_ cookie, got {value!r}")
    return value.split(";", 1)[0]


def login(core_url: str, outpost_url: str, host: str) -> str:
    """akadmin's session cookie (``name=value``): /start on the outpost, the core's authorize endpoint, the
    flow executor (identification, password), authorize again, /callback on the outpost."""
    with httpx.Client(timeout=15) as outpost, httpx.Client(timeout=15) as browser:
        start = outpost.get(outpost_url + "/outpost.goauthentik.io/start", headers={"Host": host})
        prelogin = _cookie(start)
        authorize = browser.get(start.headers["location"])
        flow = urlsplit(authorize.headers["location"])
        executor = f"{core_url}/api/v3/flows/executor/{flow.path.rstrip('/').rsplit('/', 1)[1]}/?" + \
            urlencode({"query": flow.query})

        def answer(**data) -> dict:
            response = browser.post(executor, json=data)
            return (browser.get(executor) if response.status_code == 302 else response).json()

        browser.get(executor).raise_for_status()
        answer(component="ak-stage-identification", uid_field="akadmin")
        done = answer(component="ak-stage-password", password=PASSWORD)
        if done.get("component") != "xak-flow-redirect":
            raise RuntimeError(f"login did not finish: {done}")
        back = urlsplit(browser.get(urljoin(core_url, done["to"])).headers["location"])
        callback = outpost.get(f"{outpost_url}{back.path}?{back.query}", headers={"Host": back.netloc,
                                                                                  "Cookie": prelogin})
        return _cookie(callback)


def check_allowed(url: str, headers: dict[str, str], times: int = 1) -> None:
    """The request wrk will send is allowed as akadmin (a fresh connection each time: every --workers
    process answers). wrk counts a 302 as success, so this is what proves the figures are of allowed requests."""
    for _ in range(times):
        response = httpx.get(url, headers={**headers, "Connection": "close"}, timeout=5)
        if response.status_code != 200 or (response.text != "app\n"
                                           and response.headers.get("x-authentik-username") != "akadmin"):
            raise RuntimeError(f"GET {url}: {response.status_code} {dict(response.headers)} - not allowed")


# -- Redis: 1,000,000 sessions in the outpost's own format ---------------------------------------------------

class _Recorder:
    """Stands in for ``redis.asyncio.Redis`` inside RedisStore.put: every put's pipeline is one shared
    redis-py pipeline that is never executed; its commands (the store's own keys, values and TTLs, encoded by
    redis-py) are streamed to ``redis-cli --pipe``, which reads the replies in C (redis-py would spend most
    of the fill parsing a million replies in Python)."""

    def __init__(self, redis, sink):
        from redis.asyncio.connection import Connection

        self.pipe = redis.pipeline(transaction=False)
        self.packer = Connection()  # only its encoder is used; it never connects
        self.sink = sink
        self.sink.write(b"".join(self.packer.pack_commands([("SELECT", REDIS_DB)])))
        recorder = self

        class Deferred:
            async def __aenter__(self):
                return self

            async def __aexit__(self, *exc):
                return False

            def __getattr__(self, name):
                return getattr(recorder.pipe, name)

            async def execute(self):
                return None

        self._deferred = Deferred()

    def pipeline(self, transaction: bool = True):
        return self._deferred

    def flush(self) -> int:
        commands = [args for args, _options in self.pipe.command_stack]
        self.pipe.command_stack.clear()
        self.sink.write(b"".join(self.packer.pack_commands(commands)))
        return len(commands)


async def _fill(session_id: str, count: int, cookies: Path, app) -> tuple[int, float]:
    """``count`` copies of the logged-in session (new id and core session id each) written by RedisStore.put;
    the first DISTINCT_COOKIES cookies go to ``cookies`` for wrk. Returns (written, seconds)."""
    import secrets

    import redis.asyncio as aredis

    from outpost.proxy.session import RedisStore, Session, new_session_id, sign_cookie

    client = aredis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        template = await RedisStore(client).get(session_id)
    finally:
        await client.aclose()
    if template is None:
        raise RuntimeError(f"the logged-in session {session_id[:8]}... is not in Redis DB {REDIS_DB}")
    pipe = subprocess.Popen([shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", "6379", "--pipe"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert pipe.stdin is not None
    recorder = _Recorder(aredis.Redis(), pipe.stdin)
    store = RedisStore(recorder, cache_size=0)
    started, written, sent = time.monotonic(), 0, 1
    try:
        with cookies.open("w") as out:
            while written < count and time.monotonic() - started < FILL_BUDGET_S:
                new_id = new_session_id()
                claims = {**template.claims, "sid": secrets.token_hex(32)}
                await store.put(Session(new_id, template.client_id, claims, template.raw_token, template.id_token,
                                        expires_at=template.expires_at, created_at=time.time()))
                if written < DISTINCT_COOKIES:
                    out.write(f"{app.cookie_name}="
                              f"{sign_cookie(new_id, cookie_secret=app.cookie_secret, client_id=app.client_id)}\n")
                written += 1
                if written % FILL_BATCH == 0:
                    sent += recorder.flush()
            sent += recorder.flush()
    finally:
        output = pipe.communicate(timeout=FILL_BUDGET_S)[0].decode(errors="replace")  # closes its stdin
    match = re.search(r"errors: (\d+), replies: (\d+)", output)
    if not match or match.group(1) != "0" or int(match.group(2)) != sent:
        raise RuntimeError(f"redis-cli --pipe: {sent} commands sent, it said: {output.strip()}")
    return written, time.monotonic() - started


def _redis(db: int = REDIS_DB):
    import redis

    return redis.Redis(host="127.0.0.1", port=6379, db=db)


def redis_memory_mb() -> float:
    return _redis().info("memory")["used_memory"] / 2**20


def redis_cleanup() -> int:
    """Delete every key of the bench's Redis DB under the outpost's prefix (SCAN + UNLINK in batches)."""
    client, deleted = _redis(), 0
    batch = []
    for key in client.scan_iter(match="gatehouse:proxy:*", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def app_config(core_url: str, token: str):
    """The outpost's AppConfig for the bench provider, built by the outpost's code from the core's answer."""
    from outpost.proxy.apps import Apps

    response = httpx.get(core_url + "/api/v3/outposts/proxy/", headers={"Authorization": f"Bearer {token}"},
                         timeout=15)
    response.raise_for_status()
    apps = Apps.from_snapshot(response.json()["results"])
    if len(apps.configs) != 1:
        raise RuntimeError(f"expected one provider for the bench outpost, got {apps.configs} {apps.errors}")
    return apps.configs[0]


# -- the run ---------------------------------------------------------------------------------------------------

def _ratio(top: Result | None, bottom: Result | None) -> str:
    return f"{top.rps / bottom.rps:.2f}" if top and bottom and bottom.rps else "-"


class Bench:
    """One run: a core, the bench provider, one nginx port and one outpost port reused by every case."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.results: dict[str, Result] = {}
        self.memory: list[str] = []
        self.notes: list[str] = []
        self.outpost: BenchOutpost | None = None
        self.nginx: Nginx | None = None
        self.filled = False
        self.first_cookie = ""  # the first of the distinct cookies, to check the scripted cases

    # -- plumbing
    def case(self, key: str, label: str, url: str, headers: dict[str, str], *, script: Path | None = None,
             outpost_cpu: bool = True) -> None:
        """Check that the request is allowed (wrk would count a 302 as success), then measure it."""
        check = headers if script is None else {**headers, "Cookie": self.first_cookie}
        workers = self.outpost.workers if self.outpost else 1
        check_allowed(url, check, times=4 * workers if workers > 1 else 1)
        pids = self.outpost.pids() if self.outpost and outpost_cpu else []
        self.results[key] = wrk(label, url, headers, script=script, pids=pids)

    def start_outpost(self, name: str, redis: bool = False, **kwargs) -> BenchOutpost:
        if self.outpost is not None:
            self.outpost.stop()
        self.outpost = BenchOutpost(self.tmp / name, self.core.url, self.token, port=self.port,
                                    metrics_port=self.metrics_port, redis_db=REDIS_DB if redis else None, **kwargs)
        self.outpost.start()
        self.outpost.wait_connected()
        time.sleep(2)  # the link's first refresh settles before "idle" memory is read
        return self.outpost

    def headers(self, cookie: str | None) -> tuple[dict[str, str], dict[str, str]]:
        """(through nginx, directly to the outpost); without Cookie when ``cookie`` is None (scripted)."""
        via_nginx = {"Host": self.nginx.host} | ({"Cookie": cookie} if cookie else {})
        return via_nginx, {**via_nginx, "X-Original-URL": f"{self.external_host}/"}

    # -- phases
    def run(self) -> None:
        load = os.getloadavg()[0]
        print(f"  {os.cpu_count()} cores shared by wrk (-t1 -c{CONNECTIONS}, {DURATION_S} s per case), nginx "
              f"(1 worker), the outpost and whatever else runs (load average before: {load:.2f})", flush=True)
        nginx_port, self.port, self.metrics_port = free_port(), free_port(), free_port()
        self.external_host = f"http://{APP_HOST}:{nginx_port}"
        self.core = start_core(self.tmp / "core", env={"AUTHENTIK_REDIS__HOST": ""}, bootstrap_token=ADMIN_TOKEN,
                               bootstrap_password=PASSWORD)
        try:
            with admin_client(self.core) as api:
                self.token, _ = create_outpost(api, self.external_host)
            self.app = app_config(self.core.url, self.token)
            self.nginx = Nginx(self.tmp / "nginx", nginx_port, f"127.0.0.1:{self.port}")
            self.via_nginx = f"http://127.0.0.1:{nginx_port}/"
            self.direct = f"http://127.0.0.1:{self.port}/outpost.goauthentik.io/auth/nginx"
            self.memory_store()
            if os.environ.get("GATEHOUSE_BENCH_FA_REDIS", "1") == "0":
                self.notes.append("Redis cases skipped: GATEHOUSE_BENCH_FA_REDIS=0")
            elif redis_available():
                self.redis_store()
            else:
                self.notes.append("Redis cases skipped: no Redis at 127.0.0.1:6379")
        finally:
            if self.nginx is not None:
                self.nginx.stop()
            if self.outpost is not None:
                self.outpost.stop()
            self.core.stop()
            if self.filled:
                started = time.monotonic()
                deleted = redis_cleanup()
                print(f"  Redis clean-up: {deleted:,} keys deleted from DB {REDIS_DB} in "
                      f"{time.monotonic() - started:.1f} s", flush=True)

    def memory_store(self) -> None:
        outpost = self.start_outpost("outpost-memory")
        self.memory.append(f"memory store, idle: {outpost.memory()}")
        cookie = login(self.core.url, outpost.url, self.nginx.host)
        via_nginx, direct = self.headers(cookie)
        for auth, keepalive, key, label in (
                ("floor", True, "a", "(a) floor: nginx auth_request -> nginx 200, keep-alive"),
                ("floor", False, "a_close", "(a') floor, configs as shipped (Connection: close)"),
                ("outpost", True, "b", "(b) nginx -> outpost, memory store, keep-alive"),
                ("outpost", False, "b_close", "(b') nginx -> outpost, memory, configs as shipped")):
            self.nginx.start(auth, keepalive)
            self.case(key, label, self.via_nginx, via_nginx, outpost_cpu=auth == "outpost")
        self.case("c", "(c) outpost directly, memory store", self.direct, direct)
        self.memory.append(f"memory store, after load: {outpost.memory()}")
        # The same outpost (its snapshot keeps the session) without the per-request access log line.
        self.start_outpost("outpost-memory", env={"AUTHENTIK_LOG_LEVEL": "warning"})
        self.case("c_quiet", "(c) same, AUTHENTIK_LOG_LEVEL=warning (no access log)", self.direct, direct)

    def redis_store(self) -> None:
        if _redis().dbsize():
            raise RuntimeError(f"Redis DB {REDIS_DB} is not empty; the bench needs a DB of its own "
                               "(set GATEHOUSE_BENCH_REDIS_DB to an empty one)")
        self.filled = True
        outpost = self.start_outpost("outpost-redis", redis=True)
        cookie = login(self.core.url, outpost.url, self.nginx.host)
        from outpost.proxy.session import unsign_cookie

        session_id = unsign_cookie(cookie.split("=", 1)[1], cookie_secret=self.app.cookie_secret,
                                   client_id=self.app.client_id)
        before, cookies = redis_memory_mb(), self.tmp / "cookies.txt"
        written, seconds = asyncio.run(_fill(session_id, REDIS_SESSIONS, cookies, self.app))
        after = redis_memory_mb()
        self.notes.append(f"Redis fill: {written:,} sessions in {seconds:.1f} s ({written / seconds:,.0f}/s); "
                          f"Redis used_memory {before:.0f} MB -> {after:.0f} MB "
                          f"({(after - before) * 2**20 / written / 1024:.1f} KB per session)")
        print("  " + self.notes[-1], flush=True)
        self.first_cookie = cookies.read_text().split("\n", 1)[0]
        script = self.tmp / "cookies.lua"
        script.write_text(render_text(_LUA_COOKIES, {"COOKIES": str(cookies)}))
        self.memory.append(f"Redis store, idle: {outpost.memory()}")
        via_nginx, direct = self.headers(cookie)
        scripted_nginx, scripted_direct = self.headers(None)
        self.nginx.start("outpost", True)
        many = f"+{written / 1e6:g}M"
        self.case("b_redis", f"(b) nginx -> outpost, Redis {many}, one cookie (LRU)", self.via_nginx, via_nginx)
        self.case("b_redis_miss", f"(b) nginx -> outpost, Redis {many}, distinct cookies", self.via_nginx,
                  scripted_nginx, script=script)
        self.case("c_redis", f"(c) outpost directly, Redis {many}, one cookie", self.direct, direct)
        self.case("c_redis_miss", f"(c) outpost directly, Redis {many}, distinct cookies", self.direct,
                  scripted_direct, script=script)
        self.memory.append(f"Redis store, after load: {outpost.memory()}")
        outpost = self.start_outpost("outpost-redis-2", redis=True, workers=2)
        self.memory.append(f"Redis store, --workers 2, idle: {outpost.memory()}")
        self.case("b_w2", "(b) nginx -> outpost, Redis, one cookie, --workers 2", self.via_nginx, via_nginx)
        self.case("c_w2", "(c) outpost directly, Redis, one cookie, --workers 2", self.direct, direct)
        self.memory.append(f"Redis store, --workers 2, after load: {outpost.memory()}")

    # -- the report
    def report(self) -> None:
        get = self.results.get
        print(f"\n  {'case':<56} {'rps':>8} {'p50 ms':>7} {'p99 ms':>7} {'bad':>4} {'outpost CPU/req':>16}")
        for r in self.results.values():
            cpu = "-" if r.cpu_us != r.cpu_us else f"{r.cpu_us:.0f} us"
            print(f"  {r.label:<56} {r.rps:8,.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {r.bad:4d} {cpu:>16}")
        print("\n  configs/nginx/outpost-location.conf as shipped: HTTP/1.0 + Connection: close to the outpost, a TCP\n"
              "  connection per auth subrequest. keep-alive rows: + proxy_http_version 1.1, Connection \"\", upstream\n"
              "  with keepalive. wrk keeps its connections to the outpost alive in the (c) rows.")
        rows = [("b/a   keep-alive to the outpost / keep-alive floor", get("b"), get("a")),
                ("b'/a' configs as shipped / floor as shipped", get("b_close"), get("a_close")),
                ("b'/a  configs as shipped / keep-alive floor", get("b_close"), get("a")),
                ("b/a   Redis + sessions, one cookie", get("b_redis"), get("a")),
                ("b/a   Redis + sessions, distinct cookies", get("b_redis_miss"), get("a")),
                ("b/c   memory store, --workers 1", get("b"), get("c")),
                ("b/c   Redis, --workers 1", get("b_redis"), get("c_redis")),
                ("b/c   Redis, --workers 2", get("b_w2"), get("c_w2")),
                ("c --workers 2 / c --workers 1 (Redis, one cookie)", get("c_w2"), get("c_redis"))]
        for label, top, bottom in rows:
            if top and bottom:
                print(f"  {label:<56} {_ratio(top, bottom)}")
        if get("c_w2"):
            print(f"  (--workers 2 on {os.cpu_count()} cores that wrk and nginx share: it cannot show the scaling a "
                  "machine with spare cores would)")
        for note in self.notes:
            print(f"  {note}")
        print("\n  outpost memory (/proc/<pid>/status: VmRSS, of which RssAnon, and VmHWM):")
        for line in self.memory:
            print(f"    {line}")
        print(f"\n  {GOALS}", flush=True)


def main() -> None:
    for binary in (WRK, NGINX):
        if not shutil.which(binary):
            raise RuntimeError(f"{binary} not found; install it (Debian: wrk, nginx) or set GATEHOUSE_WRK / "
                               "GATEHOUSE_NGINX")
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-fa-") as tmp:
        bench = Bench(Path(tmp))
        bench.run()
        bench.report()


if __name__ == "__main__":
    main()
