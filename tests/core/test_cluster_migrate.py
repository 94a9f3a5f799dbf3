"""Replicas that start at once migrate one after the other (core/startup.py: a PostgreSQL advisory lock held
in a transaction of its own, so it works through PgBouncer's transaction pooling too)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import need
from tests.support import postgres
from tests.support.ak import AK
from tests.support.server import REPO, core_env, create_database, drop_database

DIRECT = {"AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": "5432",
          "AUTHENTIK_POSTGRESQL__USER": "postgres"}
REPLICAS = 3


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_replicas_migrating_at_once_are_serialised(tmp_path, through):
    """Three replicas on a fresh database; through PgBouncer with three server connections in all, which a
    lock waited for inside a transaction would exhaust (the migrating replica needs a second one)."""
    need(postgres.machine_postgres_answers(), "PostgreSQL on 127.0.0.1:5432 (user postgres, trust)")
    target = dict(DIRECT)
    bouncer = None
    if through == "pgbouncer":
        need(shutil.which("pgbouncer") is not None, "pgbouncer (Debian package pgbouncer)")
        bouncer = postgres.PgBouncer.start()
        target.update({"AUTHENTIK_POSTGRESQL__PORT": str(bouncer.port), "AUTHENTIK_POSTGRESQL__USE_PGBOUNCER": "true"})
    database = create_database(DIRECT)
    try:
        runs = []
        for n in range(REPLICAS):  # each its own data directory, as pods have
            env = {**core_env(tmp_path / f"replica{n}"), **target, "AUTHENTIK_POSTGRESQL__NAME": database}
            env.pop("AUTHENTIK_REDIS__HOST", None)
            runs.append(subprocess.Popen([*AK, "migrate"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True))
        outputs = []
        for run in runs:
            out, _ = run.communicate(timeout=240)
            outputs.append((run.returncode, out))
        assert all(code == 0 for code, _ in outputs), "\n\n".join(out for _, out in outputs)
        import psycopg

        with psycopg.connect(**postgres.MACHINE_PG, dbname=database) as conn:
            admins = conn.execute("SELECT count(*) FROM authentik_core_user WHERE username = 'akadmin'").fetchone()
            applied = conn.execute("SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations").fetchone()
        assert applied[0] == applied[1] > 0  # every migration recorded once
        assert admins[0] <= 1
    finally:
        if bouncer is not None:
            bouncer.stop()
        drop_database(DIRECT, database)
