"""``python -m bench ldap``: binds and searches per second, latency and memory of Gatehouse's LDAP outpost
(cached mode) next to OpenLDAP's ``slapd``, in one run, with the same 10,000 users in 50 groups, the same
requests and the same load generator.

- **slapd** (Debian package ``slapd``, ``/usr/sbin/slapd``): started by the bench in the foreground
  (``-d 0``) as the current user on ``ldap://127.0.0.1:<free port>/`` from a ``slapd.conf`` written to a
  temporary directory: the mdb backend in that directory, equality indexes on objectClass, cn, uid and
  memberOf, the ``memberof`` overlay (module ``memberof``: it defines the ``memberOf`` attribute). The
  directory is loaded offline with ``slapadd`` from an LDIF the bench writes: the DNs of Gatehouse's scheme
  (``cn=userNNNN,ou=users,<base>``, ``cn=groupNN,ou=groups,<base>``), inetOrgPerson + posixAccount users
  with ``userPassword`` as ``{SSHA}`` of the same password, groupOfNames groups with ``member``. slapadd
  does not run overlays, so each user's ``memberOf`` is written in the LDIF (static, as the overlay would
  have kept it). ACL: userPassword for auth only, everything else readable. Missing: that half is skipped
  with the command that installs it; Gatehouse's figures are still printed.
- **Gatehouse**: a real ``ak server`` (fresh data directory, SQLite) and a standalone ``ak outpost ldap``,
  set up as tests/outposts/test_ldap_e2e.py does: an LDAP provider on the default authentication flow with
  ``search_mode=cached``, ``bind_mode=cached`` and ``search_full_directory`` (every bound user may search the
  whole directory), its application (no policy binding: open to every user), the outpost. The users and the
  50 groups are made in bulk through ``ak shell`` (one argon2 hash of the password shared by all), as
  bench/radius.py does.

The load generator (below, the same for both servers) is asyncio TCP: ``CONCURRENCY`` connections, each
with one request outstanding; requests are encoded before the clock starts with ldap3's own operation
builders on its pyasn1 RFC 4511 schema (tests/protocols/ldap/client.py); answers are framed with the
project's codec and only their tags and result codes read (a full pyasn1 decode of 200 entries would make
the generator the bottleneck). A case stops after ``REQUESTS`` operations or ``SECONDS`` seconds. Cases, each
against slapd, then Gatehouse:

- **bind via the core** (first bind of distinct users): Gatehouse sends each to the core
  (``POST /api/v3/outposts/ldap/<pk>/authenticate/``: the provider's flow with argon2, then the
  application's policies); slapd checks ``{SSHA}`` (one salted SHA-1). Once with 1 outstanding (latency)
  and once with ``CONCURRENCY`` outstanding (rate), on users not bound before.
- **bind again**: the users bound above, again (Gatehouse answers from its bind cache: scrypt of the
  password); 1 outstanding (latency), then ``CONCURRENCY``.
- **search (cn=userNNNN)**: one user by name under ``ou=users,<base>`` (subtree; under the base itself
  Gatehouse also finds the user's virtual group, as authentik), attributes cn, mail, uidNumber,
  gidNumber, homeDirectory, memberOf, on connections bound as a user. (In authentik's DN scheme ``uid`` is
  the user's hashed id, not the name, so the lookup by name is on ``cn`` on both servers.)
- **search (memberOf=cn=groupNN,...)**: the group's 200 members under ``ou=users,<base>``, the same
  attributes.

The ``gen CPU`` column is the generator's own CPU use (100% = one core): near 100%, the figure is the
generator's ceiling, not the server's. ``server CPU µs/op``: the server process's CPU time during the case
over the operations sent (Gatehouse: the outpost only, not the core's share of a bind). RSS of the outpost (idle before the first search, then with the
10,000 users cached, then after the load) and of slapd. Then where Gatehouse's search time goes: the
outpost's own ``duration_ms`` log lines, and in this process the same steps the outpost runs
(the fetch in pages of 100 and of 1,000, ``directory.build`` of the 10,000 users from the core's JSON,
``index.Indexed`` over the entries, then ``Connection.search`` per filter, indexed and not; the memory of
each layer by tracemalloc), and what one change in the core costs a cached-mode outpost: a user renamed
through the API, lookups one at a time (answered from the previous copy) until the outpost has refetched
and rebuilt the directory.
SQLite only. No thresholds: figures are printed for people (issue 9's goals are printed next to them).
About 70 s. ``BENCH_LDAP_USERS=500 BENCH_LDAP_SECONDS=2`` makes a quick try of the bench itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.measure import cpu_seconds, pct, rss_mb
from bench.measure import ok as _ok
from protocols.ldap import codec
from protocols.ldap.connection import Connection
from tests.protocols.ldap.client import bind as encode_bind
from tests.protocols.ldap.client import search as encode_search
from tests.support.ak import ak
from tests.support.outpost import OutpostProcess
from tests.support.server import free_port, start_core

USERS = int(os.environ.get("BENCH_LDAP_USERS", "10000"))  # fewer for a quick try of the bench itself
GROUPS = 50
CONCURRENCY = 16
REQUESTS = 3000
SECONDS = float(os.environ.get("BENCH_LDAP_SECONDS", "15"))
CORE_BINDS_SERIAL = 60  # bind via the core, 1 outstanding: users 0..59
CORE_BINDS = 400  # bind via the core, CONCURRENCY outstanding: the next users (or SECONDS)
REPLY_TIMEOUT = 30.0
PASSWORD = "bench-Ldap-Password-1"  # noqa: S105 - a throwaway bench value
ADMIN_TOKEN = "bench-ldap-bootstrap-token-0123456789abcdef"  # noqa: S105 - a throwaway bootstrap token
BASE = "dc=ldap,dc=goauthentik,dc=io"
USERS_BASE = f"ou=users,{BASE}"  # the search base of both cases (SSSD's and most clients' user base)
ATTRIBUTES = ["cn", "mail", "uidNumber", "gidNumber", "homeDirectory", "memberOf"]
SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"


def username(i: int) -> str:
    return f"user{i:04d}"


def group_of(i: int) -> int:
    return i % GROUPS


def user_dn(i: int) -> str:
    return f"cn={username(i)},ou=users,{BASE}"


def group_dn(g: int) -> str:
    return f"cn=group{g:02d},ou=groups,{BASE}"


# --- the load generator -----------------------------------------------------------------------------------------

BIND_RESPONSE, SEARCH_ENTRY, SEARCH_DONE = 0x61, 0x64, 0x65


@dataclass
class Result:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # ms, answers with code 0 (and the expected entries)
    wrong: int = 0
    lost: int = 0
    codes: dict[int, int] = field(default_factory=dict)
    ok_users: list[int] = field(default_factory=list)  # the user of each accepted operation
    elapsed: float = 0.0
    cpu: float = 0.0  # the generator's own CPU seconds (this process)
    server_cpu: float = 0.0  # the server process's CPU seconds during the case

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def _header(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, length, content offset) of the BER value at ``pos`` (one-octet tags: all LDAP uses here).
    Hand-written: two lines a value, where a pyasn1 decode of each answer would cost more than the server."""
    tag, first = buf[pos], buf[pos + 1]
    if first < 0x80:
        return tag, first, pos + 2
    count = first & 0x7F
    return tag, int.from_bytes(buf[pos + 2:pos + 2 + count], "big"), pos + 2 + count


def _op_and_code(message: bytes) -> tuple[int, int]:
    """The protocolOp tag of one LDAPMessage and, for a response with an LDAPResult, its resultCode."""
    _, _, pos = _header(message, 0)  # the SEQUENCE
    _, length, start = _header(message, pos)  # messageID
    op, _, body = _header(message, start + length)
    if op in (BIND_RESPONSE, SEARCH_DONE):
        _, _, at = _header(message, body)  # resultCode ENUMERATED
        return op, message[at]
    return op, -1


Request = tuple[bytes, int, int]  # encoded request, entries expected (-1: a bind), the user (or group)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes,
                    buffer: bytearray) -> tuple[int, int]:
    """Send one request, read its answer: (result code, entries received)."""
    writer.write(data)
    entries = 0
    while True:
        length = codec.frame_length(buffer)
        while length is None:
            chunk = await asyncio.wait_for(reader.read(256 * 1024), REPLY_TIMEOUT)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buffer += chunk
            length = codec.frame_length(buffer)
        message = bytes(buffer[:length])
        del buffer[:length]
        op, code = _op_and_code(message)
        if op == SEARCH_ENTRY:
            entries += 1
        elif op in (BIND_RESPONSE, SEARCH_DONE):
            return code, entries


async def _load(port: int, batches: list[list[Request]], setup: bytes | None, count: int,
                seconds: float) -> Result:
    result = Result()

    async def worker(batch: list[Request]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        buffer = bytearray()
        try:
            if setup is not None:
                code, _ = await _exchange(reader, writer, setup, buffer)
                if code != 0:
                    raise RuntimeError(f"the setup bind got result code {code}")
            for data, expected, who in batch:
                if time.monotonic() > deadline or result.sent >= count:
                    return
                result.sent += 1
                started = time.perf_counter()
                try:
                    code, entries = await _exchange(reader, writer, data, buffer)
                except (TimeoutError, ConnectionError):
                    result.lost += 1
                    return
                result.codes[code] = result.codes.get(code, 0) + 1
                if code == 0 and (expected < 0 or entries == expected):
                    result.latencies.append((time.perf_counter() - started) * 1000)
                    result.ok_users.append(who)
                else:
                    result.wrong += 1
        finally:
            writer.close()

    deadline = time.monotonic() + seconds
    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(batch) for batch in batches))
    result.elapsed, result.cpu = time.monotonic() - started, time.process_time() - cpu
    return result


def load(port: int, make: Callable[[int, int], Request], users: list[int], *, count: int = REQUESTS,
         seconds: float = SECONDS, concurrency: int = CONCURRENCY, bound: bool = False) -> Result:
    """Worker w sends make(message id, users[w], users[w + concurrency], ...) in turn, ``count`` in all."""
    per_worker = -(-count // concurrency)
    batches = [[make(n + 2, users[(w + n * concurrency) % len(users)]) for n in range(per_worker)]
               for w in range(concurrency)]
    setup = encode_bind(1, user_dn(USERS - 1), PASSWORD) if bound else None
    return asyncio.run(_load(port, batches, setup, count, seconds))


def bind_request(message_id: int, i: int) -> Request:
    return encode_bind(message_id, user_dn(i), PASSWORD), -1, i


def lookup_request(message_id: int, i: int) -> Request:
    return encode_search(message_id, USERS_BASE, f"(cn={username(i)})", 2, ATTRIBUTES), 1, i


def members_request(message_id: int, g: int) -> Request:
    return encode_search(message_id, USERS_BASE, f"(memberOf={group_dn(g % GROUPS)})", 2, ATTRIBUTES), USERS // GROUPS, g


SERIAL = list(range(CORE_BINDS_SERIAL))
PARALLEL = list(range(CORE_BINDS_SERIAL, CORE_BINDS_SERIAL + CORE_BINDS))


BIND_FIRST = "bind, first of each user (Gatehouse: via the core), 1 outstanding"
BIND_FIRST_MANY = f"bind, first of each user (Gatehouse: via the core), {CONCURRENCY} outstanding"
BIND_AGAIN_ONE = "bind again, the same users (Gatehouse: its bind cache), 1 outstanding"
BIND_AGAIN = f"bind again, the same users (Gatehouse: its bind cache), {CONCURRENCY} outstanding"
LOOKUP = "search (cn=userNNNN), 1 entry"
MEMBERS = f"search (memberOf=cn=groupNN,...), {USERS // GROUPS} entries"


def run_cases(port: int, pid: int) -> dict[str, Result]:
    """The cases in order; the bind cases first (the cached one re-binds the users the first two bound)."""
    out: dict[str, Result] = {}

    def case(name: str, *args, **kwargs) -> None:
        before = cpu_seconds(pid)
        out[name] = load(port, *args, **kwargs)
        out[name].server_cpu = cpu_seconds(pid) - before

    case(BIND_FIRST, bind_request, SERIAL, count=len(SERIAL), concurrency=1)
    case(BIND_FIRST_MANY, bind_request, PARALLEL, count=len(PARALLEL))
    bound = sorted({i for result in out.values() for i in result.ok_users})  # the users bound once above
    case(BIND_AGAIN_ONE, bind_request, bound, count=min(len(bound), 200), concurrency=1)
    case(BIND_AGAIN, bind_request, bound)
    case(LOOKUP, lookup_request, list(range(0, USERS, 7)), bound=True)
    case(MEMBERS, members_request, list(range(GROUPS)), bound=True, count=REQUESTS // 4)
    return out


# --- slapd ------------------------------------------------------------------------------------------------------

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
sizelimit unlimited
database mdb
suffix "{base}"
rootdn "cn=admin,{base}"
rootpw {rootpw}
directory {dir}/db
maxsize 1073741824
index objectClass eq
index cn,uid eq
index memberOf eq
overlay memberof
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"""


def ssha(password: str) -> str:
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()  # noqa: S324


def ldif() -> str:
    """The same users and groups as Gatehouse's, in its DN scheme; memberOf written statically."""
    parts = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: ldap\no: bench\n",
             f"dn: ou=users,{BASE}\nobjectClass: organizationalUnit\nou: users\n",
             f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n"]
    hashed = ssha(PASSWORD)  # one salt for all, as Gatehouse's one shared argon2 hash
    for i in range(USERS):
        parts.append(f"dn: {user_dn(i)}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                     f"cn: {username(i)}\nsn: User {i}\nuid: {username(i)}\nmail: {username(i)}@example.com\n"
                     f"uidNumber: {2000 + i}\ngidNumber: {2000 + i}\nhomeDirectory: /home/{username(i)}\n"
                     f"userPassword: {hashed}\nmemberOf: {group_dn(group_of(i))}\n")
    for g in range(GROUPS):
        members = "".join(f"member: {user_dn(i)}\n" for i in range(g, USERS, GROUPS))
        parts.append(f"dn: {group_dn(g)}\nobjectClass: groupOfNames\ncn: group{g:02d}\n{members}")
    return "\n".join(parts)


class Slapd:
    """slapd in the foreground on 127.0.0.1:<free port>, as the current user, its database in ``workdir``."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Write the configuration and the LDIF, slapadd, start; returns slapadd's seconds."""
        (self.dir / "db").mkdir(parents=True, exist_ok=True)
        conf = self.dir / "slapd.conf"
        conf.write_text(SLAPD_CONF.format(dir=self.dir, base=BASE, rootpw=os.urandom(12).hex()))
        (self.dir / "bench.ldif").write_text(ldif())
        started = time.monotonic()
        added = subprocess.run([SLAPADD, "-f", str(conf), "-q", "-l", str(self.dir / "bench.ldif")],
                               capture_output=True, text=True, timeout=300)
        if added.returncode != 0:
            raise RuntimeError(f"slapadd failed ({added.returncode}):\n{added.stderr[-3000:]}")
        loaded = time.monotonic() - started
        self.process = subprocess.Popen([SLAPD, "-f", str(conf), "-h", f"ldap://127.0.0.1:{self.port}/", "-d", "0"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=open(self.dir / "stderr", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if load(self.port, bind_request, [USERS - 1], count=1, concurrency=1, seconds=2).latencies:
                    return loaded
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"slapd did not answer a bind within 30 s:\n{self.tail()}")

    def tail(self) -> str:
        path = self.dir / "stderr"
        return "\n".join(path.read_text(errors="replace").splitlines()[-30:]) if path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def start_slapd(tmp: Path) -> tuple[Slapd | None, float]:
    if not (Path(SLAPD).exists() and Path(SLAPADD).exists()):
        print(f"slapd: not installed ({SLAPD}), its half is skipped. Install it with "
              "`apt-get install slapd ldap-utils` (Debian/Ubuntu; the bench starts it itself, no service is needed).")
        return None, 0.0
    version = subprocess.run([SLAPD, "-VV"], capture_output=True, text=True)
    line = (version.stdout + version.stderr).splitlines()
    server = Slapd(tmp / "slapd")
    loaded = server.start()
    print(f"slapd: {line[0].strip() if line else SLAPD}; mdb, {USERS} users loaded by slapadd in {loaded:.1f} s")
    return server, loaded


# --- Gatehouse --------------------------------------------------------------------------------------------------

BULK_USERS = """
from django.contrib.auth.hashers import make_password
from core.accounts.models import Group, User
from core.accounts.usernames import canonical
groups = []
for g in range({groups}):
    group = Group(name=f"group{{g:02d}}")
    group.save()
    groups.append(group)
encoded = make_password({password!r})
users = [User(username=f"user{{i:04d}}", name=f"User {{i}}", username_canonical=canonical(f"user{{i:04d}}"),
              email=f"user{{i:04d}}@example.com", password=encoded) for i in range({count})]
User.objects.bulk_create(users, batch_size=500)
users = list(User.objects.filter(username__startswith="user").order_by("username"))
User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=groups[i % {groups}].pk)
                                         for i, u in enumerate(users)], batch_size=1000)
print(len(users), len(groups))
"""


def setup_gatehouse(core, api: httpx.Client) -> tuple[int, str]:
    started = time.monotonic()
    done = ak(core.env, "shell", "-c", BULK_USERS.format(groups=GROUPS, password=PASSWORD, count=USERS), timeout=900)
    if done.returncode != 0 or done.stdout.split()[-2:] != [str(USERS), str(GROUPS)]:
        raise RuntimeError(f"making the users failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    print(f"  {USERS} users in {GROUPS} groups made in {time.monotonic() - started:.1f} s (ak shell)")
    flow = _ok(api.get("/api/v3/flows/instances/", params={"slug": "default-authentication-flow"}))["results"][0]
    provider = _ok(api.post("/api/v3/providers/ldap/", json={
        "name": "bench-ldap", "authorization_flow": flow["pk"], "base_dn": BASE, "search_full_directory": True,
        "search_mode": "cached", "bind_mode": "cached"}))
    _ok(api.post("/api/v3/core/applications/", json={"name": "Bench LDAP", "slug": "bench-ldap",
                                                     "provider": provider["pk"]}))
    outpost = _ok(api.post("/api/v3/outposts/instances/", json={"name": "bench-ldap", "type": "ldap",
                                                                "providers": [provider["pk"]]}))
    key = _ok(api.get(f"/api/v3/core/tokens/{outpost['token_identifier']}/view_key/"))["key"]
    return provider["pk"], key


def first_search(port: int) -> float:
    """Seconds for the first search of a cached-mode outpost: it fetches and builds the whole directory."""
    started = time.monotonic()
    result = load(port, lookup_request, [1], count=1, concurrency=1, bound=True, seconds=600)
    if not result.latencies:
        raise RuntimeError(f"the first search failed: codes {result.codes}, lost {result.lost}")
    return time.monotonic() - started


def outpost_durations(log: Path) -> dict[str, list[float]]:
    """``duration_ms`` of the outpost's operations by kind (one JSON log line each)."""
    out: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") not in ("ldap bind", "ldap search") or record.get("code") != 0:
            continue
        kind = record["op"] + (" cached" if record.get("cached") else "")
        if record["op"] == "search":
            kind += f" {record.get('entries')} entries"
        out.setdefault(kind, []).append(float(record.get("duration_ms", "nan")))
    return out


def profile_search(core_url: str, key: str) -> dict[str, float]:
    """The outpost's cached-search steps in this process, on the core's JSON: ms each."""
    from outpost.ldap.handlers import GROUPS_PATH, USERS_PATH
    from protocols.ldap import directory
    from protocols.ldap.index import Indexed
    from tests.protocols.ldap.client import search as encode

    out: dict[str, float] = {}
    with httpx.Client(base_url=core_url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
        for size in (100, 1000):  # the link's default page size; the API's maximum (the cached directory's)
            started = time.perf_counter()
            users, groups = [], []
            for path, into in ((USERS_PATH, users), (GROUPS_PATH, groups)):
                page = 1
                while page:
                    body = http.get(path, params={"page": page, "page_size": size}).json()
                    into.extend(body["results"])
                    page = body.get("pagination", {}).get("next") or 0
            out[f"fetch (users and groups, pages of {size})"] = (time.perf_counter() - started) * 1000
    layout = directory.Layout(BASE)
    started = time.perf_counter()
    entries = directory.build(users, groups, layout)
    out[f"directory.build ({len(entries)} entries)"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    indexed = Indexed(entries)
    out["index.Indexed (equality and DN indexes)"] = (time.perf_counter() - started) * 1000
    conn = Connection()
    for name, data in (("(cn=user0042)", encode(5, USERS_BASE, "(cn=user0042)", 2, ATTRIBUTES)),
                       ("(memberOf=group07)", encode(6, USERS_BASE, f"(memberOf={group_dn(7)})", 2, ATTRIBUTES)),
                       ("(cn=user004*) (not indexed: a scan)", encode(7, USERS_BASE, "(cn=user004*)", 2, ATTRIBUTES))):
        [request] = conn.receive(data)
        started = time.perf_counter()
        conn.search(request, lambda: indexed)
        out[f"Connection.search {name}"] = (time.perf_counter() - started) * 1000
    # the memory of each layer, by tracemalloc (slow: after the timings): the core's JSON (held only while the
    # outpost builds), the entries built from it, their indexes
    import tracemalloc

    text = json.dumps([users, groups])
    del entries, indexed
    tracemalloc.start()
    users, groups = json.loads(text)
    mem = {"the core's JSON objects (the outpost builds a page at a time)": tracemalloc.get_traced_memory()[0]}
    entries = directory.build(users, groups, layout)
    mem["the entries built from them"] = tracemalloc.get_traced_memory()[0] - sum(mem.values())
    indexed = Indexed(entries)
    mem["their equality and DN indexes"] = tracemalloc.get_traced_memory()[0] - sum(mem.values())
    conn.search(request, lambda: indexed)
    mem["a search (nothing kept)"] = tracemalloc.get_traced_memory()[0] - sum(mem.values())
    tracemalloc.stop()
    out.update({f"memory (MB): {k}": v / 1e6 for k, v in mem.items()})
    return out


def change_stall(core, port: int, log: Path) -> dict[str, float]:
    """One user's name changed through the API; lookups, one at a time, until the outpost has refetched the
    directory (its log says so): the slowest lookup and the time to the refetch."""
    def refetches() -> int:
        return log.read_text(errors="replace").count('"ldap directory cached"')

    before = refetches()
    with httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60) as api:
        [user] = _ok(api.get("/api/v3/core/users/", params={"username": username(3)}))["results"]
        started = time.monotonic()
        _ok(api.patch(f"/api/v3/core/users/{user['pk']}/", json={"name": "Renamed By The Bench"}))
    slowest, deadline = 0.0, started + 120
    while refetches() == before and time.monotonic() < deadline:
        result = load(port, lookup_request, [3], count=1, concurrency=1, bound=True, seconds=120)
        slowest = max(slowest, *result.latencies, 0.0)
    return {"refetched": time.monotonic() - started, "slowest": slowest}


def run(tmp: Path) -> tuple[dict, dict | None]:
    theirs: dict | None = None
    slapd, _ = start_slapd(tmp)
    print("Gatehouse: ak server (SQLite) + ak outpost ldap (search_mode and bind_mode cached)")
    core = start_core(tmp / "core", bootstrap_token=ADMIN_TOKEN)
    outpost = None
    try:
        with httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                          timeout=120) as api:
            _provider, key = setup_gatehouse(core, api)
        port = free_port()
        outpost = OutpostProcess(tmp / "outpost", core.url, key, kind="ldap", env={
            "AUTHENTIK_LISTEN__LDAP": f"127.0.0.1:{port}", "AUTHENTIK_LISTEN__LDAPS": f"127.0.0.1:{free_port()}"})
        outpost.start()
        outpost.wait_connected()
        idle = rss_mb(outpost.process.pid)
        fetch = first_search(port)
        loaded = rss_mb(outpost.process.pid)
        print(f"  the outpost's first search (fetch and build of the directory): {fetch:.1f} s")
        if slapd is not None:
            theirs = {"rss": [rss_mb(slapd.process.pid)]}
            theirs["cases"] = run_cases(slapd.port, slapd.process.pid)
            theirs["rss"].append(rss_mb(slapd.process.pid))
            slapd.stop()
        cases = run_cases(port, outpost.process.pid)
        after = rss_mb(outpost.process.pid)
        stall = change_stall(core, port, outpost.log)
        durations = outpost_durations(outpost.log)
        refetches = outpost.log.read_text(errors="replace").count('"ldap directory cached"')
        profile = profile_search(core.url, key)
        ours = {"cases": cases, "rss": (idle, loaded, after), "fetch": fetch, "durations": durations,
                "refetches": refetches, "profile": profile, "stall": stall, "core_rss": rss_mb(core.pid)}
        return ours, theirs
    finally:
        if outpost is not None:
            outpost.stop()
        core.stop()
        if slapd is not None:
            slapd.stop()


# --- report -----------------------------------------------------------------------------------------------------


def _row(label: str, result: Result) -> str:
    problems = []
    if result.wrong:
        problems.append(f"{result.wrong} wrong (codes {result.codes})")
    if result.lost:
        problems.append(f"{result.lost} lost")
    busy = result.cpu / result.elapsed * 100 if result.elapsed else 0.0
    per_op = result.server_cpu / result.sent * 1e6 if result.sent else float("nan")
    return (f"  {label:<70} {len(result.latencies):>6} {result.rate:>9,.0f} {pct(result.latencies, 0.5):>9.2f} "
            f"{pct(result.latencies, 0.99):>9.2f} {busy:>6.0f}% {per_op:>9,.0f}  {', '.join(problems)}")


def report(ours: dict, theirs: dict | None) -> None:
    print(f"\n{CONCURRENCY} connections with one request outstanding (but where said), at most {REQUESTS} "
          f"operations or {SECONDS:g} s a case, {USERS} users in {GROUPS} groups")
    print(f"  {'case':<70} {'answers':>6} {'ops/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'gen CPU':>7} "
          f"{'server CPU µs/op':>9}")
    for name, result in ours["cases"].items():
        if theirs is not None:
            print(_row(f"{name}, slapd", theirs["cases"][name]))
        print(_row(f"{name}, Gatehouse", result))
        if theirs is not None and name.startswith("search"):
            base = theirs["cases"][name].rate
            print(f"  {'':<70} Gatehouse / slapd = {result.rate / base if base else float('nan'):.3f} (goal >= 0.5)")
    idle, loaded, after = ours["rss"]
    print(f"  RSS: outpost {idle:.0f} MB idle, {loaded:.0f} MB with the {USERS} users cached, {after:.0f} MB after "
          f"the load (goal <= 60 MB); core {ours['core_rss']:.0f} MB", end="")
    print(f"; slapd {theirs['rss'][0]:.0f} / {theirs['rss'][1]:.0f} MB (before / after)" if theirs else "")
    serial, cached = ours["cases"][BIND_FIRST], ours["cases"][BIND_AGAIN_ONE]
    print(f"  goals: bind via the core p50 {pct(serial.latencies, 0.5):.1f} ms (<= 60), cached bind p50 "
          f"{pct(cached.latencies, 0.5):.2f} ms (<= 2)")
    print(f"Where Gatehouse's time goes (the directory was fetched {ours['refetches']} time(s); the first search "
          f"took {ours['fetch']:.1f} s):")
    stall = ours["stall"]
    print(f"  one user renamed through the API: the outpost had refetched the directory {stall['refetched']:.1f} s "
          f"later; the slowest lookup meanwhile took {stall['slowest']:.0f} ms (the previous copy answers meanwhile)")
    for kind, values in sorted(ours["durations"].items()):
        if len(values) >= 5:
            print(f"  outpost duration_ms, {kind} ({len(values)}): p50 {pct(values, 0.5):.1f}, "
                  f"p99 {pct(values, 0.99):.1f} ms")
    for step, ms in ours["profile"].items():
        print(f"  in-process: {step}: {ms:.1f}" + ("" if step.startswith("memory") else " ms"))


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-ldap-") as name:
        tmp = Path(name)
        ours, theirs = run(tmp)
    report(ours, theirs)
    print(f"(the whole bench: {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
