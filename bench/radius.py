"""``python -m bench radius``: Access-Requests per second and latency of Gatehouse's RADIUS outpost next to
FreeRADIUS's, in one run, with the same users, the same client and the same load generator.

- **FreeRADIUS** (Debian package ``freeradius``, ``/usr/sbin/freeradius``): started by the bench in the
  foreground (``-f``, not the slow ``-X``) from a minimal configuration written to a temporary directory
  (modules pap, chap, mschap, files; one client 127.0.0.1 requiring Message-Authenticator; a free UDP port on
  127.0.0.1; 4 threads; ``reject_delay = 1`` as its default). Its ``users`` file holds ``USERS`` users, each
  with the PAP password and, for requests carrying MS-CHAP-Challenge, the user's network password. Missing:
  that half is skipped with the command that installs it, Gatehouse's figures are still printed.
- **Gatehouse**: a real ``ak server`` (fresh data directory, SQLite; ``AUTHENTIK_WEB__THREADS`` as shipped) and
  a standalone ``ak outpost radius``, set up as tests/outposts/radius/test_radius_e2e.py does: a RADIUS
  provider on the default authentication flow, its application bound to a group, the outpost. The ``USERS``
  users (in the group, one argon2 hash of the PAP password shared by all, and a network password each: a token
  of intent radius) are made in bulk through ``ak shell``: making them one by one through the API costs an
  argon2 hash and a request each.

Both servers are up at once and each case runs against FreeRADIUS, then Gatehouse, so the (shared, noisy)
machine treats them alike. The load generator (below, the same for both servers) is asyncio UDP: ``CONCURRENCY`` workers, each on its own
socket with one request outstanding, requests encoded before the clock starts (protocols/radius/codec.py,
random Request Authenticators, a Message-Authenticator on each), replies checked (Identifier, code, Response
Authenticator). A case stops after ``REQUESTS`` requests or ``SECONDS`` seconds; requests go round the users.
Cases:

- **Status-Server** (RFC 5997): the server alone (Gatehouse: the outpost, no core call).
- **PAP accept**: Gatehouse sends every one to the core (``POST /api/v3/outposts/radius/<pk>/authenticate/``:
  the provider's flow with argon2, then the application's policies): the provider's ``bind_mode=direct``.
- **MS-CHAPv2 accept**: Gatehouse's core checks the proof against the user's network passwords (unsealed each
  time) and the application's policies (``authenticate_challenge``).
- **PAP reject** (wrong password): both servers delay a reject by 1 s on purpose (Gatehouse's outpost; FreeRADIUS's
  ``reject_delay``), so only ``REJECTS`` requests, each for another user (the core's login rate limit counts
  failures per name and address): the latency is the point, not the rate.
- **PAP, cached**: after the cases above, the provider is switched to ``bind_mode=cached`` (the outpost's refresh
  awaited), one warm-up pass sends each of the ``USERS`` users once (through the core: the successes are
  remembered), then the same PAP case again: answered by the outpost (a salted scrypt check, ~1 ms) without the
  core. FreeRADIUS runs its PAP case again beside it (it has no such mode: the same work as before).

Status-Server is measured once more against a second outpost with ``AUTHENTIK_LOG_LEVEL=warning`` (no
per-request log line). The ``gen CPU`` column is the generator's own CPU use (100% = one core): near 100%, the
figure is the generator's ceiling, not the server's (FreeRADIUS's rates are lower bounds).

Then a profile of Gatehouse's PAP path: the outpost's own ``duration_ms`` (its log line) under the load, and
``PROFILE`` sequential calls of the core's authenticate view as the outpost makes it (client time, the view's
``Server-Timing: total`` and the argon2 verify in it, ``hash``). RSS of the outpost and of FreeRADIUS after the
load. SQLite only (the core's database is not what this measures; PostgreSQL would add a network round trip per
query). No thresholds: figures are printed for people (issue 10's goal: Gatehouse >= 0.5x FreeRADIUS's rate).
The machine's 2 cores are shared by the generator, the servers and anything else running.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.measure import ok as _ok
from bench.measure import pct, rss_mb
from protocols.radius import mschap
from protocols.radius.codec import HEADER, Code, encode_request
from tests.support.ak import ak
from tests.support.outpost import OutpostProcess
from tests.support.server import start_core

USERS = 1000
CONCURRENCY = 16
REQUESTS = 2000
SECONDS = 15.0
REJECTS = 32
PROFILE = 30
REPLY_TIMEOUT = 10.0  # a request unanswered this long is counted as lost
SECRET = b"bench-radius-shared-secret"
PAP_PASSWORD = "bench-Pap-Password-1"  # noqa: S105 - a throwaway bench value
ADMIN_TOKEN = "bench-radius-bootstrap-token-0123456789abcdef"  # noqa: S105 - a throwaway bootstrap token
GROUP = "bench-radius-users"
FREERADIUS = "/usr/sbin/freeradius"


def username(i: int) -> str:
    return f"user{i:04d}"


def network_password(i: int) -> str:
    return f"bench-net-{i:04d}-Pw"  # tokens' keys are unique (Token.key_hash)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- requests ---------------------------------------------------------------------------------------------------


def pap(identifier: int, i: int, password: str = PAP_PASSWORD) -> tuple[bytes, bytes]:
    authenticator = os.urandom(16)
    return authenticator, encode_request(Code.ACCESS_REQUEST, SECRET, identifier, authenticator,
                                         [("User-Name", username(i)), ("NAS-Identifier", "bench")],
                                         password=password)


def mschapv2(identifier: int, i: int) -> tuple[bytes, bytes]:
    authenticator, challenge, peer = os.urandom(16), os.urandom(16), os.urandom(16)
    nt = mschap.generate_nt_response(challenge, peer, username(i), network_password(i))
    return authenticator, encode_request(Code.ACCESS_REQUEST, SECRET, identifier, authenticator, [
        ("User-Name", username(i)), ("NAS-Identifier", "bench"), ("MS-CHAP-Challenge", challenge),
        ("MS-CHAP2-Response", bytes([identifier, 0]) + peer + b"\x00" * 8 + nt)])


def status_server(identifier: int, i: int) -> tuple[bytes, bytes]:
    authenticator = os.urandom(16)
    return authenticator, encode_request(Code.STATUS_SERVER, SECRET, identifier, authenticator,
                                         [("NAS-Identifier", "bench")])


# --- the load generator -----------------------------------------------------------------------------------------


@dataclass
class Result:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # ms, answers with the expected code
    wrong: int = 0  # answered with another code, or a reply that does not verify
    lost: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0  # the generator's own CPU seconds (this process)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.put_nowait(data)


def _verifies(reply: bytes, request_authenticator: bytes) -> bool:
    """RFC 2865 §3's Response Authenticator (hand-written: three lines, and the generator must stay cheap)."""
    if len(reply) < HEADER:
        return False
    digest = hashlib.md5(reply[:4] + request_authenticator + reply[HEADER:] + SECRET).digest()  # noqa: S324 - RFC
    return digest == reply[4:20]


async def _load(port: int, make: Callable[[int, int], tuple[bytes, bytes]], expect: int, count: int,
                seconds: float, concurrency: int) -> Result:
    loop = asyncio.get_running_loop()
    per_worker = -(-count // concurrency)
    # Encoded before the clock starts; worker w sends user w, w + concurrency, ... with identifiers 0, 1, ...
    batches = [[make(n % 256, (w + n * concurrency) % USERS) for n in range(per_worker)] for w in range(concurrency)]
    result = Result()
    deadline = time.monotonic() + seconds

    async def worker(batch: list[tuple[bytes, bytes]]) -> None:
        transport, inbox = await loop.create_datagram_endpoint(_Inbox, remote_addr=("127.0.0.1", port))
        try:
            for authenticator, data in batch:
                if time.monotonic() > deadline or result.sent >= count:
                    return
                result.sent += 1
                started = time.perf_counter()
                transport.sendto(data)
                try:
                    while True:  # skip a late answer to an earlier, lost request
                        reply = await asyncio.wait_for(inbox.queue.get(), REPLY_TIMEOUT)
                        if reply[1] == data[1]:
                            break
                except TimeoutError:
                    result.lost += 1
                    continue
                if reply[0] == expect and _verifies(reply, authenticator):
                    result.latencies.append((time.perf_counter() - started) * 1000)
                else:
                    result.wrong += 1
        finally:
            transport.close()

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(batch) for batch in batches))
    result.elapsed, result.cpu = time.monotonic() - started, time.process_time() - cpu
    return result


def load(port: int, make: Callable[[int, int], tuple[bytes, bytes]], expect: int, count: int = REQUESTS,
         seconds: float = SECONDS, concurrency: int = CONCURRENCY) -> Result:
    return asyncio.run(_load(port, make, expect, count, seconds, concurrency))


def reject_request(identifier: int, i: int) -> tuple[bytes, bytes]:
    return pap(identifier, i, "wrong-" + PAP_PASSWORD)


CASES: list[tuple[str, Callable[[int, int], tuple[bytes, bytes]], int, int]] = [
    ("Status-Server", status_server, Code.ACCESS_ACCEPT, REQUESTS),
    ("PAP accept", pap, Code.ACCESS_ACCEPT, REQUESTS),
    ("MS-CHAPv2 accept", mschapv2, Code.ACCESS_ACCEPT, REQUESTS),
    ("PAP reject (1 s delay)", reject_request, Code.ACCESS_REJECT, REJECTS),
]
CACHED = "PAP accept, bind_mode=cached"


# --- FreeRADIUS -------------------------------------------------------------------------------------------------

RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {dir}
sbindir = /usr/sbin
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
name = freeradius
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
libdir = /usr/lib/freeradius
pidfile = {dir}/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {{
  destination = files
  file = {dir}/radius.log
  auth = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 1
  status_server = yes
}}
thread pool {{
  start_servers = 4
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 4
  max_requests_per_server = 0
}}
client bench {{
  ipaddr = 127.0.0.1
  secret = {secret}
  require_message_authenticator = yes
}}
modules {{
  pap {{
  }}
  chap {{
  }}
  mschap {{
  }}
  files {{
    filename = {dir}/users
  }}
  always ok {{
    rcode = ok
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  authorize {{
    Autz-Type Status-Server {{
      ok
    }}
    files
    mschap
    chap
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
    Auth-Type CHAP {{
      chap
    }}
    Auth-Type MS-CHAP {{
      mschap
    }}
  }}
}}
"""


class FreeRadius:
    """FreeRADIUS in the foreground on 127.0.0.1:<free port>, as the current user, logging to its directory."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = free_udp_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "radiusd.conf").write_text(RADIUSD_CONF.format(dir=self.dir, port=self.port,
                                                                   secret=SECRET.decode()))
        lines = []
        for i in range(USERS):  # the first matching entry wins: MS-CHAP requests get the network password
            lines.append(f'{username(i)} Cleartext-Password := "{network_password(i)}", MS-CHAP-Challenge =* ANY')
            lines.append(f'{username(i)} Cleartext-Password := "{PAP_PASSWORD}"')
        (self.dir / "users").write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen([FREERADIUS, "-f", "-d", str(self.dir)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"freeradius exited with {self.process.returncode}:\n{self.tail()}")
            if load(self.port, status_server, Code.ACCESS_ACCEPT, count=1, concurrency=1, seconds=1).latencies:
                return
            time.sleep(0.2)
        raise RuntimeError(f"freeradius did not answer Status-Server within 30 s:\n{self.tail()}")

    def tail(self) -> str:
        text = ""
        for name in ("stderr", "radius.log"):
            path = self.dir / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-30:]) + "\n"
        return text

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# --- Gatehouse --------------------------------------------------------------------------------------------------

BULK_USERS = """
from django.contrib.auth.hashers import make_password
from core.accounts.models import Group, Token, TokenIntents, User
from core.accounts.usernames import canonical
group = Group.objects.get(name={group!r})
encoded = make_password({password!r})
users = [User(username=f"user{{i:04d}}", name=f"User {{i}}", username_canonical=canonical(f"user{{i:04d}}"),
              password=encoded) for i in range({count})]
User.objects.bulk_create(users, batch_size=500)
users = list(User.objects.filter(username__startswith="user").order_by("username"))
User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=group.pk) for u in users])
tokens = []
for i, user in enumerate(users):
    token = Token(identifier=f"{{user.username}}-radius", intent=TokenIntents.INTENT_RADIUS, user=user,
                  expiring=False)
    token.set_key(f"bench-net-{{i:04d}}-Pw")
    tokens.append(token)
Token.objects.bulk_create(tokens, batch_size=500)
print(len(users), len(tokens))
"""


def setup_gatehouse(core, api: httpx.Client) -> tuple[int, str]:
    group = _ok(api.post("/api/v3/core/groups/", json={"name": GROUP}))
    started = time.monotonic()
    done = ak(core.env, "shell", "-c", BULK_USERS.format(group=GROUP, password=PAP_PASSWORD, count=USERS),
              timeout=600)
    if done.returncode != 0 or done.stdout.split()[-2:] != [str(USERS), str(USERS)]:
        raise RuntimeError(f"making the users failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    print(f"  {USERS} users with a network password each made in {time.monotonic() - started:.1f} s (ak shell)")
    flow = _ok(api.get("/api/v3/flows/instances/", params={"slug": "default-authentication-flow"}))["results"][0]
    provider = _ok(api.post("/api/v3/providers/radius/", json={
        "name": "bench-radius", "authorization_flow": flow["pk"], "client_networks": "127.0.0.1/32",
        "shared_secret": SECRET.decode()}))
    app = _ok(api.post("/api/v3/core/applications/", json={"name": "Bench VPN", "slug": "bench-vpn",
                                                           "provider": provider["pk"]}))
    _ok(api.post("/api/v3/policies/bindings/", json={"target": app["pk"], "group": group["pk"], "order": 0}))
    outpost = _ok(api.post("/api/v3/outposts/instances/", json={"name": "bench-radius", "type": "radius",
                                                                "providers": [provider["pk"]]}))
    key = _ok(api.get(f"/api/v3/core/tokens/{outpost['token_identifier']}/view_key/"))["key"]
    return provider["pk"], key


def _timing(header: str | None, name: str) -> float:
    found = re.search(rf"{name};dur=([0-9.]+)", header or "")
    return float(found.group(1)) if found else float("nan")


def profile_core(url: str, key: str, provider: int) -> dict[str, list[float]]:
    """The outpost's PAP call, sequentially: client time, the view's time, the argon2 verify in it."""
    client, view, hashing = [], [], []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for i in range(PROFILE):
            started = time.perf_counter()
            response = http.post(f"/api/v3/outposts/radius/{provider}/authenticate/",
                                 json={"username": username(i), "password": PAP_PASSWORD, "remote_ip": "127.0.0.1"})
            client.append((time.perf_counter() - started) * 1000)
            if response.json().get("result") != "ok":
                raise RuntimeError(f"the core refused {username(i)}: {response.text[:300]}")
            view.append(_timing(response.headers.get("Server-Timing"), "total"))
            hashing.append(_timing(response.headers.get("Server-Timing"), "hash"))
    return {"client": client, "view": view, "hash": hashing}


def outpost_durations(log: Path, method: str, cached: bool = False) -> list[float]:
    """``duration_ms`` of the outpost's accepted ``method`` requests (one JSON log line per datagram), those
    answered from the credential cache (``cached: true``) or the others."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("method") == method and record.get("result") == "accept" and \
                bool(record.get("cached")) is cached:
            out.append(float(record.get("duration_ms", "nan")))
    return out


def start_freeradius(tmp: Path) -> FreeRadius | None:
    if not Path(FREERADIUS).exists():
        print(f"FreeRADIUS: not installed ({FREERADIUS}), its half is skipped. Install it with "
              "`apt-get install freeradius` (Debian/Ubuntu; the bench starts it itself, no service is needed).")
        return None
    version = subprocess.run([FREERADIUS, "-v"], capture_output=True, text=True).stdout.splitlines()
    print(f"FreeRADIUS: {version[0] if version else FREERADIUS}, 4 threads, users file")
    server = FreeRadius(tmp / "freeradius")
    server.start()
    return server


def warm_up(port: int) -> None:
    load(port, status_server, Code.ACCESS_ACCEPT, count=CONCURRENCY * 4)
    load(port, pap, Code.ACCESS_ACCEPT, count=CONCURRENCY * 2)


def switch_to_cached(core, provider: int, outpost: OutpostProcess) -> None:
    """``bind_mode=cached`` on the provider; returns once the outpost has refetched its configuration."""
    def refreshes() -> int:
        return outpost.log.read_text(errors="replace").count("configuration refreshed")

    before = refreshes()
    with httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60) as api:
        _ok(api.patch(f"/api/v3/providers/radius/{provider}/", json={"bind_mode": "cached"}))
    deadline = time.monotonic() + 60
    while refreshes() <= before:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the outpost did not refresh after bind_mode=cached:\n{outpost.tail()}")
        time.sleep(0.1)


def run(tmp: Path) -> tuple[dict, dict | None]:
    """Both servers up at once; each case runs against FreeRADIUS, then Gatehouse, so that the (shared,
    noisy) machine treats them alike."""
    theirs: dict | None = None
    freeradius = start_freeradius(tmp)
    print("Gatehouse: ak server (SQLite) + ak outpost radius")
    core = start_core(tmp / "core", bootstrap_token=ADMIN_TOKEN)
    outpost = None
    try:
        with httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                          timeout=60) as api:
            provider, key = setup_gatehouse(core, api)
        port = free_udp_port()
        outpost = OutpostProcess(tmp / "outpost", core.url, key, kind="radius", env={
            "AUTHENTIK_LISTEN__RADIUS": f"127.0.0.1:{port}",
            "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING": f"127.0.0.1:{free_udp_port()}"})
        outpost.start()
        outpost.wait_connected()
        idle = rss_mb(outpost.process.pid)
        cases: dict[str, Result] = {}
        if freeradius is not None:
            theirs = {"cases": {}, "rss": [rss_mb(freeradius.process.pid)]}
            warm_up(freeradius.port)
        warm_up(port)
        for name, make, expect, count in CASES:
            if freeradius is not None:
                theirs["cases"][name] = load(freeradius.port, make, expect, count=count)
            cases[name] = load(port, make, expect, count=count)
        switch_to_cached(core, provider, outpost)
        started = time.monotonic()
        warm = load(port, pap, Code.ACCESS_ACCEPT, count=USERS, seconds=900)
        print(f"  bind_mode=cached warm-up: {len(warm.latencies)} of {USERS} users accepted through the core in "
              f"{time.monotonic() - started:.0f} s")
        if freeradius is not None:
            theirs["cases"][CACHED] = load(freeradius.port, pap, Code.ACCESS_ACCEPT)
        cases[CACHED] = load(port, pap, Code.ACCESS_ACCEPT)
        after = rss_mb(outpost.process.pid)
        if freeradius is not None:
            theirs["rss"].append(rss_mb(freeradius.process.pid))
            freeradius.stop()
        profile = profile_core(core.url, key, provider)
        durations = {m: outpost_durations(outpost.log, m) for m in ("pap", "mschapv2")}
        durations["pap, cached"] = outpost_durations(outpost.log, "pap", cached=True)
        core_rss = rss_mb(core.pid)
        outpost.stop()
        # the same outpost without its per-request log line (what an operator can choose for high rates)
        outpost = OutpostProcess(tmp / "outpost-quiet", core.url, key, kind="radius", env={
            "AUTHENTIK_LISTEN__RADIUS": f"127.0.0.1:{port}", "AUTHENTIK_LOG_LEVEL": "warning",
            "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING": f"127.0.0.1:{free_udp_port()}"})
        outpost.start()
        outpost.wait_connected()
        load(port, status_server, Code.ACCESS_ACCEPT, count=CONCURRENCY * 4)
        quiet = load(port, status_server, Code.ACCESS_ACCEPT)
        ours = {"cases": cases, "rss": (idle, after), "profile": profile, "durations": durations,
                "core_rss": core_rss, "quiet": quiet}
        return ours, theirs
    finally:
        if outpost is not None:
            outpost.stop()
        core.stop()
        if freeradius is not None:
            freeradius.stop()


# --- report -----------------------------------------------------------------------------------------------------


def _row(label: str, result: Result) -> str:
    problems = []
    if result.wrong:
        problems.append(f"{result.wrong} wrong")
    if result.lost:
        problems.append(f"{result.lost} lost")
    busy = result.cpu / result.elapsed * 100 if result.elapsed else 0.0
    return (f"  {label:<44} {len(result.latencies):>6} {result.rate:>10,.0f} {pct(result.latencies, 0.5):>9.2f} "
            f"{pct(result.latencies, 0.99):>9.2f} {busy:>6.0f}%  {', '.join(problems)}")


def report(ours: dict, theirs: dict | None) -> None:
    print(f"\n{CONCURRENCY} requests outstanding, at most {REQUESTS} requests or {SECONDS:g} s a case "
          f"({REJECTS} for rejects), {USERS} users in turn")
    print(f"  {'case':<44} {'answers':>6} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'gen CPU':>7}")
    for name in [*(c[0] for c in CASES), CACHED]:
        if theirs is not None:
            print(_row(f"{name}, FreeRADIUS", theirs["cases"][name]))
        print(_row(f"{name}, Gatehouse", ours["cases"][name]))
        if theirs is not None and not name.startswith("PAP reject"):
            base = theirs["cases"][name].rate
            ratio = ours["cases"][name].rate / base if base else float("nan")
            print(f"  {'':<44} Gatehouse / FreeRADIUS = {ratio:.3f} (goal >= 0.5)")
    print(_row("Status-Server, Gatehouse, log level warning", ours["quiet"]))
    idle, after = ours["rss"]
    print(f"  RSS: outpost {idle:.0f} MB idle, {after:.0f} MB after the load; core {ours['core_rss']:.0f} MB", end="")
    if theirs is not None:
        print(f"; FreeRADIUS {theirs['rss'][0]:.0f} / {theirs['rss'][1]:.0f} MB")
    else:
        print()
    profile, durations = ours["profile"], ours["durations"]
    print("Where Gatehouse's PAP time goes:")
    for method in ("pap", "pap, cached", "mschapv2"):
        values = durations[method]
        if values:
            print(f"  outpost duration_ms of {method} accepts under the load (log lines, {len(values)}): "
                  f"p50 {pct(values, 0.5):.1f}, p99 {pct(values, 0.99):.1f} ms")
    print(f"  the core's authenticate call alone, {PROFILE} sequential: client p50 {pct(profile['client'], 0.5):.1f} ms,"
          f" view (Server-Timing total) p50 {pct(profile['view'], 0.5):.1f} ms, of which argon2 p50 "
          f"{pct(profile['hash'], 0.5):.1f} ms")
    view = statistics.median(profile["view"])
    print(f"  -> one request at a time the core's view allows about {1000 / view:.0f} PAP requests/s; every "
          f"Access-Request runs the flow (argon2, reputation, session, events) in the core, whose "
          f"AUTHENTIK_WEB__THREADS (4) share one CPython process (bind_mode=direct)")
    if theirs is not None:
        pap_ratio = ours["cases"]["PAP accept"].rate / max(theirs["cases"]["PAP accept"].rate, 1e-9)
        if pap_ratio < 0.5:
            print(f"  PAP: Gatehouse answers {pap_ratio:.3f}x FreeRADIUS's rate, far below the goal of 0.5x: "
                  "FreeRADIUS compares a cleartext password from its users file in C; Gatehouse runs a login "
                  "(flow, argon2, policies, events) per request.")
        cached_ratio = ours["cases"][CACHED].rate / max(theirs["cases"][CACHED].rate, 1e-9)
        print(f"  PAP with bind_mode=cached: {cached_ratio:.3f}x FreeRADIUS's rate (goal 0.5x): the outpost checks a "
              "salted scrypt digest (~1 ms of CPU, on purpose: a memory dump must not yield passwords cheaply) "
              "in one CPython process, beside the generator on the same cores.")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-radius-") as name:
        tmp = Path(name)
        ours, theirs = run(tmp)
    report(ours, theirs)


if __name__ == "__main__":
    main()
