"""``ak server`` on the PostgreSQL set-ups of clustered deployments, for real: through PgBouncer in
transaction pooling mode (AUTHENTIK_POSTGRESQL__USE_PGBOUNCER), and with a streaming read replica
(AUTHENTIK_POSTGRESQL__READ_REPLICAS__0__*)."""

from __future__ import annotations

import shutil

import httpx
import pytest

from tests.conftest import need
from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.support import postgres
from tests.support.server import create_database, drop_database, start_core

EXECUTOR = "/api/v3/flows/executor/default-authentication-flow/?query="
DIRECT = {"AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": "5432",
          "AUTHENTIK_POSTGRESQL__USER": "postgres"}


def login(base_url: str) -> httpx.Client:
    """A browser that went through the default authentication flow as akadmin."""
    browser = httpx.Client(base_url=base_url, timeout=30, follow_redirects=True)
    assert browser.get(EXECUTOR).json()["component"] == "ak-stage-identification"
    answer = browser.post(EXECUTOR, json={"component": "ak-stage-identification", "uid_field": "akadmin"})
    assert answer.json()["component"] == "ak-stage-password", answer.text
    done = browser.post(EXECUTOR, json={"component": "ak-stage-password", "password": ADMIN_PASSWORD})
    assert done.json()["component"] == "xak-flow-redirect", done.text
    return browser


@pytest.fixture
def pgbouncer():
    need(shutil.which("pgbouncer") is not None, "pgbouncer (Debian package pgbouncer)")
    need(postgres.machine_postgres_answers(), "PostgreSQL on 127.0.0.1:5432 (user postgres, trust)")
    bouncer = postgres.PgBouncer.start()
    yield bouncer
    bouncer.stop()


def test_ak_server_through_pgbouncer_transaction_pooling(tmp_path, pgbouncer):
    database = create_database(DIRECT)  # made directly; the core reaches it only through PgBouncer
    env = {**DIRECT, "AUTHENTIK_POSTGRESQL__PORT": str(pgbouncer.port), "AUTHENTIK_POSTGRESQL__NAME": database,
           "AUTHENTIK_POSTGRESQL__USE_PGBOUNCER": "true"}
    core = None
    try:
        core = start_core(tmp_path / "core", env=env, bootstrap_password=ADMIN_PASSWORD,
                          bootstrap_token=ADMIN_TOKEN)
        api = httpx.Client(base_url=core.url + "/api/v3", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                           timeout=30)
        # two logins whose transactions share PgBouncer's few server connections
        first, second = login(core.url), login(core.url)
        for browser in (first, second):
            assert browser.get("/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"
        # the same statements many times: psycopg would prepare them after 5 (prepare_threshold), which
        # transaction pooling cannot keep; and a write read back in the next request
        for n in range(12):
            created = api.post("/core/groups/", json={"name": f"bouncer-{n}"})
            assert created.status_code == 201, created.text
            assert api.get(f"/core/groups/{created.json()['pk']}/").json()["name"] == f"bouncer-{n}"
        assert api.get("/core/groups/", params={"search": "bouncer-"}).json()["pagination"]["count"] == 12
        # the whole server ran through PgBouncer, in transaction mode
        pools = [p for p in pgbouncer.show("POOLS") if p["database"] == database]
        assert pools and pools[0]["pool_mode"] == "transaction", pools
        stats = [s for s in pgbouncer.show("STATS") if s["database"] == database]
        assert stats and stats[0]["total_xact_count"] > 100, stats
        # a session ended through the pooler is refused at once
        sessions = api.get("/core/authenticated_sessions/").json()["results"]
        assert len(sessions) == 2
        assert api.delete(f"/core/authenticated_sessions/{sessions[0]['uuid']}/").status_code == 204
        assert sorted(b.get("/api/v3/core/users/me/").status_code for b in (first, second)) == [200, 401]
        assert "ERROR" not in pgbouncer.log(), pgbouncer.log()[-3000:]
        assert "Traceback" not in core.output(), core.tail()
    finally:
        if core is not None:
            core.stop()
        drop_database(DIRECT, database)


def statements(log: str, *needles: str) -> list[str]:
    return [line for line in log.splitlines() if "statement:" in line and all(n in line for n in needles)]


def test_reads_go_to_a_streaming_replica(tmp_path):
    """A primary and a hot standby streaming from it (both made here: the machine's PostgreSQL does not allow
    replication connections, pg_hba.conf has no ``replication`` line), each logging every statement."""
    need(postgres.StreamingPair.available() is None, str(postgres.StreamingPair.available()))
    pair = postgres.StreamingPair.start()
    core = None
    try:
        with pair.connect(pair.primary_port) as conn:
            conn.execute("CREATE DATABASE authentik")
        env = {**DIRECT, "AUTHENTIK_POSTGRESQL__PORT": str(pair.primary_port), "AUTHENTIK_POSTGRESQL__NAME": "authentik",
               "AUTHENTIK_POSTGRESQL__READ_REPLICAS__0__PORT": str(pair.replica_port)}
        core = start_core(tmp_path / "core", env=env, bootstrap_password=ADMIN_PASSWORD, bootstrap_token=ADMIN_TOKEN)
        api = httpx.Client(base_url=core.url + "/api/v3", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                           timeout=30)
        probe = "replica-probe-7f3c"
        created = api.post("/core/groups/", json={"name": probe})  # a write: the standby would refuse it
        assert created.status_code == 201, created.text
        pair.wait_replayed()
        for _ in range(5):
            assert api.get("/core/groups/", params={"search": probe}).json()["pagination"]["count"] == 1
        # a login: its flow state and session are read from the primary, the user from either
        browser = login(core.url)
        assert browser.get("/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"
        primary_log, replica_log = pair.log("primary"), pair.log("replica")
        assert len(statements(replica_log, "SELECT COUNT(*)", "LIKE", probe)) == 5, replica_log[-3000:]
        assert statements(primary_log, "SELECT", "LIKE", probe) == []
        assert statements(primary_log, "INSERT", probe)
        for line in statements(replica_log):
            assert not any(word in line for word in ("INSERT", "UPDATE", "DELETE")), line
            for table in ("django_session", "authentik_core_token", "authentik_core_authenticatedsession"):
                assert f"\"{table}\"" not in line, line
        reads = {"primary": len(statements(primary_log, "SELECT")), "replica": len(statements(replica_log, "SELECT"))}
        assert reads["replica"] > 10, reads
        print(f"SELECT statements: {reads}")
        assert "Traceback" not in core.output(), core.tail()
    finally:
        if core is not None:
            core.stop()
        pair.stop()
