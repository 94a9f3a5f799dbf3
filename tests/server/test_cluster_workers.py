"""Two real ``ak worker`` processes on one PostgreSQL and one Redis (the machine's; a database of this test's own).

The expiry pass (core/worker.py) runs in one worker at a time (a PostgreSQL advisory lock, core/locks.py): while
worker A works through a backlog of expired sessions, worker B's passes (every 0.3 s) are skipped. A SIGKILL of A
in the middle of its pass releases the lock with A's connection; B takes over and finishes: every expired session
is gone, every live one is kept, and no session is half deleted (each row goes in its own transaction, with what
hangs on it). Queued mail, which every worker drains at once, is claimed message by message: each mail is sent
once. Loopback only, every wait bounded; the figures are printed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.worker import EXPIRY_LOCK_ID
from tests.conftest import need
from tests.server.conftest import ADMIN_PASSWORD
from tests.server.test_cluster_db import DIRECT
from tests.server.test_cluster_replicas import redis_answers
from tests.support import postgres
from tests.support.server import REPO, core_env, create_database, drop_database

REDIS_DB = "11"  # this file's own database on the shared Redis
EXPIRED = 1000  # a backlog that takes a worker seconds (one row, its signals and its transaction at a time)
LIVE = 50
INTERVAL = "0.3"  # seconds between a worker's expiry passes
BOUND = 60.0  # a bound on each wait, not a goal


class Worker:
    def __init__(self, name: str, workdir: Path, env: dict):
        workdir.mkdir(parents=True, exist_ok=True)
        self.name, self.log = name, workdir / "worker.log"
        self.env = {**core_env(workdir / "data", env), "TMPDIR": str(workdir)}  # its own heartbeat file
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--interval", INTERVAL],
                                            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    def passes(self) -> list[dict]:
        """The expiry passes it logged (their counts; ``{"skipped": 1}`` when the other worker held the lock)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "expiry pass":
                found.append(entry)
        return found

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def until(predicate, what: str, detail=lambda: ""):
    deadline = time.monotonic() + BOUND
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what}: not within {BOUND:g} s\n{detail()}"
        time.sleep(0.02)
    return value


def ak(env: dict, tmp_path: Path, *args: str) -> str:
    """``ak <args>`` on the test's database; its output (asserting it succeeded)."""
    done = subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=core_env(tmp_path / "data", env), timeout=BOUND * 2)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def env(tmp_path):
    """The environment of every ``ak`` process of the test: a migrated database of its own, the shared Redis."""
    need(postgres.machine_postgres_answers(), "PostgreSQL on 127.0.0.1:5432 (user postgres, trust)")
    need(redis_answers(), "Redis on 127.0.0.1:6379")
    name = create_database(DIRECT)
    env = {**DIRECT, "AUTHENTIK_POSTGRESQL__NAME": name, "AUTHENTIK_REDIS__HOST": "127.0.0.1",
           "AUTHENTIK_REDIS__PORT": "6379", "AUTHENTIK_REDIS__DB": REDIS_DB,
           "AUTHENTIK_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD}
    try:
        ak(env, tmp_path, "migrate")
        yield env
    finally:
        drop_database(DIRECT, name)


def test_two_workers_one_expiry_pass_at_a_time_and_a_killed_one_is_taken_over(env, tmp_path):
    import psycopg

    conn = psycopg.connect(**postgres.MACHINE_PG, dbname=env["AUTHENTIK_POSTGRESQL__NAME"], autocommit=True)
    sessions = "authentik_core_authenticatedsession"

    def count(expired: bool) -> int:
        return conn.execute(f"SELECT count(*) FROM {sessions} WHERE expires {'<' if expired else '>'} now()"
                            ).fetchone()[0]

    def lock_holders() -> int:
        return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                            "((classid::bigint << 32) | objid::bigint) = %s", [EXPIRY_LOCK_ID]).fetchone()[0]

    user = conn.execute("SELECT id FROM authentik_core_user WHERE username = 'akadmin'").fetchone()[0]
    for n, expires in ((EXPIRED, "now() - interval '1 hour'"), (LIVE, "now() + interval '1 day'")):
        conn.execute(f"INSERT INTO {sessions} (uuid, session_key, sid, user_id, last_user_agent, created, "  # noqa: S608
                     f"last_used, expires) SELECT gen_random_uuid(), md5(random()::text) || g, "
                     f"encode(sha256((md5(random()::text) || g)::bytea), 'hex'), %s, '', now(), now(), {expires} "
                     f"FROM generate_series(1, %s) g", [user, n])
    assert (count(True), count(False)) == (EXPIRED, LIVE)

    a, b = Worker("A", tmp_path / "a", env), Worker("B", tmp_path / "b", env)
    try:
        a.start()
        until(lambda: count(True) < EXPIRED, "worker A began expiring", a.tail)
        b.start()
        # B's passes while A's runs: every one skipped (A holds the lock)
        until(lambda: len(b.passes()) >= 3, "three passes of worker B", b.tail)
        assert count(True) > 0 and a.passes() == [], "A's pass ended before the kill: raise EXPIRED"
        assert all(p.get("skipped") == 1 and "sessions" not in p for p in b.passes()), b.passes()
        skipped = len(b.passes())
        assert lock_holders() == 1

        a.process.kill()  # SIGKILL in the middle of its pass
        killed = time.monotonic()
        a.process.wait(10)
        remaining = count(True)
        until(lambda: lock_holders() == 0 or count(True) < remaining, "the lock released", b.tail)
        released = time.monotonic() - killed
        until(lambda: count(True) < remaining, "worker B took over", b.tail)
        took_over = time.monotonic() - killed
        until(lambda: count(True) == 0, "worker B finished the expiry", b.tail)
        finished = time.monotonic() - killed
        taken = until(lambda: [p for p in b.passes() if p.get("sessions")], "B's pass logged", b.tail)
        assert sum(p["sessions"] for p in taken) <= remaining, b.passes()
        # nothing half done: no expired session left, every live one kept
        assert (count(True), count(False)) == (0, LIVE)
        assert b.alive(), b.tail()
        print(f"\ntwo ak workers: {skipped} passes of B skipped while A expired sessions; A killed (SIGKILL) with "
              f"{remaining} of {EXPIRED} expired sessions left; lock free {released * 1000:.0f} ms after the kill; "
              f"B expiring {took_over * 1000:.0f} ms after the kill and finished them {finished * 1000:.0f} ms after the kill (passes every {INTERVAL} s); "
              f"{LIVE} live sessions kept")
    finally:
        a.stop()
        b.stop()
        conn.close()


MAILS = 60  # queued mails, to as many users (the per-user limit is 3 in 30 minutes)


def test_two_workers_send_each_queued_mail_once(env, tmp_path):
    """Both workers drain one outbox at once (every 0.3 s, 20 a pass): each mail is claimed by one of them."""
    from tests.support.smtp import SmtpSink

    ak(env, tmp_path, "shell", "-c", (
        "from core.accounts.models import User\n"
        "from core.flows.models import Flow\n"
        "from core.mail.models import FlowLinkMail\n"
        "flow = Flow.objects.get(slug='default-authentication-flow')\n"
        f"for n in range({MAILS}):\n"
        "    user = User.objects.create(username=f'mail{n}', email=f'mail{n}@example.test')\n"
        "    FlowLinkMail.objects.create(flow=flow, user=user, name_key=user.username)\n"))
    with SmtpSink() as sink:
        mail = {"AUTHENTIK_EMAIL__HOST": "127.0.0.1", "AUTHENTIK_EMAIL__PORT": str(sink.port),
                "AUTHENTIK_WEB__BASE_URL": "https://auth.example.test"}
        workers = [Worker(name, tmp_path / name, {**env, **mail}) for name in ("a", "b")]
        try:
            for worker in workers:
                worker.start()
            sink.wait_for(MAILS, timeout=BOUND)
            time.sleep(1.0)  # a duplicate would arrive within the next passes (every 0.3 s)
            received = list(sink.messages)
            assert all(worker.alive() for worker in workers), [w.tail() for w in workers]
            senders = [sum('"event": "flow link mail sent"' in line
                           for line in worker.log.read_text(errors="replace").splitlines()) for worker in workers]
        finally:
            for worker in workers:
                worker.stop()
    recipients = sorted(str(message["To"]) for message in received)
    assert recipients == sorted(f"mail{n}@example.test" for n in range(MAILS)), recipients  # each one, once
    assert sum(senders) == MAILS, senders
    print(f"\ntwo ak workers, {MAILS} queued mails: each sent once, {senders[0]} by A and {senders[1]} by B")
