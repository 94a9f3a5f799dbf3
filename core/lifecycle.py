"""What ``ak healthcheck`` needs to know about the process beside it: is it a server or a worker, and is
the worker alive?

One image runs both ``ak server`` and ``ak worker`` and carries one ``HEALTHCHECK CMD ["ak", "healthcheck"]``,
so, like authentik (its ``lifecycle/ak`` writes ``$TMPDIR/authentik-mode``), each command records its mode in
the container's temporary directory at start. A server is healthy when it answers ``/-/health/live/``; a
worker when its last heartbeat promised another one that is not overdue and the database (and Redis, when
configured) answer, which is what authentik documents for ``ak healthcheck`` in the worker container.

The same checks serve the start of ``ak server``, ``ak worker`` and ``ak migrate`` (a bounded wait for the
database and Redis, one line naming the variable to fix) and every ``ak`` command that needs a migrated
database (core/cli.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MODES = ("server", "worker")
MODE_FILE = "authentik-mode"
HEARTBEAT_FILE = "gatehouse-worker-heartbeat"
HEARTBEAT_GRACE_S = 60.0  # a pass may take this long beyond its interval before the worker counts as stuck


def _path(name: str, directory: str | None) -> Path:
    return Path(directory or tempfile.gettempdir()) / name


def _write(path: Path, text: str) -> None:
    """Atomically (a health check never reads half a file); os.replace swaps a planted symlink, never follows it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def record_mode(mode: str, directory: str | None = None) -> None:
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    with contextlib.suppress(OSError):  # a read-only /tmp costs only the health check's guess
        _write(_path(MODE_FILE, directory), mode + "\n")


def recorded_mode(directory: str | None = None) -> str:
    """The mode the last ``ak server``/``ak worker`` here recorded; ``server`` when none did."""
    try:
        mode = _path(MODE_FILE, directory).read_text().strip()
    except OSError:
        return "server"
    return mode if mode in MODES else "server"


def beat(next_within: float, directory: str | None = None, now: float | None = None) -> None:
    """The worker is alive and promises its next beat within ``next_within`` seconds."""
    deadline = (time.time() if now is None else now) + next_within + HEARTBEAT_GRACE_S
    with contextlib.suppress(OSError):
        _write(_path(HEARTBEAT_FILE, directory), f"{deadline:.3f} {os.getpid()}\n")


def stopped(directory: str | None = None) -> None:
    """The worker stops on purpose: its promise is withdrawn at once, not when it falls due."""
    with contextlib.suppress(OSError):
        _path(HEARTBEAT_FILE, directory).unlink()


def heartbeat_problem(directory: str | None = None, now: float | None = None) -> str | None:
    """None while the worker's last promise holds, else why not."""
    path = _path(HEARTBEAT_FILE, directory)
    try:
        deadline = float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return f"no worker heartbeat at {path} (is `ak worker` running here?)"
    overdue = (time.time() if now is None else now) - deadline
    if overdue > 0:
        return f"worker heartbeat overdue by {overdue:.0f} s ({path}): the worker is stuck or stopped"
    return None


def database_problem() -> str | None:
    """None when the database answers ``SELECT 1``, else the reason (one line)."""
    from django.db import DatabaseError, connection

    connection.close_if_unusable_or_obsolete()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        connection.close()
        text = str(exc).strip()
        return f"database unreachable: {text.splitlines()[0] if text else type(exc).__name__}"
    return None


def redis_client(url: str, timeout: float = 3.0):
    """A client for health checks: one PING is one try (redis-py would otherwise retry with backoff, 10 times
    by default, and a refused connection would take seconds to report)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from protocols import redis_url

    return redis_url.client(url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def redis_problem(url: str | None, client=None) -> str | None:
    """None when Redis is not configured or answers PING, else the reason. ``client`` (from ``redis_client``)
    is kept by a caller that checks again and again (readiness): its connection is reused while Redis answers."""
    if not url:
        return None
    import redis

    from protocols import redis_url

    own = client is None
    if own:
        client = redis_client(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"redis unreachable: {redis_url.reason(exc, url)}"
    finally:
        if own:
            client.close()
    return None


# ---------------------------------------------------------------------------------------------------------
# Before a command uses the database: reachable (with a bounded wait at start), migrated, the right secret key

SERVICE_WAIT_S = 30.0  # authentik's lifecycle/wait_for_db.py: 30 attempts a second apart, then exit 1
RETRY_EVERY_S = 1.0


def database_target(config) -> str:
    """The database for people: the variables that name it, or the SQLite file."""
    if config.postgresql:
        pg = config.postgresql
        return f"PostgreSQL {pg.name!r} at AUTHENTIK_POSTGRESQL__HOST:PORT={pg.host}:{pg.port}"
    return f"SQLite {config.data_dir / 'gatehouse.sqlite3'}"


def _unreachable(config, what: str, reason: str, waited: float) -> str:
    within = f"within {waited:g} s" if waited else "(no wait)"
    if what == "redis":
        fix = ("AUTHENTIK_REDIS__URL" if config.redis.sentinel_url
               else "AUTHENTIK_REDIS__HOST, __PORT, __PASSWORD")
        return f"Redis at {config.redis.target} did not answer {within}: {reason}; start Redis or fix {fix}"
    return (f"the database, {database_target(config)}, did not answer {within}: {reason}; start PostgreSQL "
            "or fix AUTHENTIK_POSTGRESQL__HOST, __PORT, __USER, __PASSWORD, __NAME")


def wait_for_services(config, seconds: float, database: bool = True, redis: bool = True,
                      announce: Callable[[str], None] | None = None,
                      clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                      ) -> str | None:
    """Wait up to ``seconds`` for the database (``SELECT 1``) and Redis (``PING``, when configured) to answer,
    retrying once a second (containers start together). None when both answer, else one line naming the
    variable to fix, what failed and how long it waited. ``announce`` gets one line when the wait begins."""
    deadline = clock() + seconds
    announced = False
    while True:
        failed = []
        if database and config.postgresql:  # SQLite is a file: nothing to wait for
            problem = database_problem()
            if problem:
                failed.append(("database", problem.removeprefix("database unreachable: ")))
        if redis and config.redis:
            problem = redis_problem(config.redis.url)
            if problem:
                failed.append(("redis", problem.removeprefix("redis unreachable: ")))
        if not failed:
            return None
        what, reason = failed[0]
        if clock() >= deadline:
            return _unreachable(config, what, reason, seconds)
        if announce and not announced:
            announce(f"waiting up to {seconds:g} s for " + " and ".join(
                "Redis" if w == "redis" else "the database" for w, _ in failed) + f": {reason}")
            announced = True
        sleep(max(0.0, min(RETRY_EVERY_S, deadline - clock())))


def schema_problem(config) -> str | None:
    """None when every migration is applied, else one line saying what to run (never touches an absent SQLite
    file: connecting would create it)."""
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    if not config.postgresql and not (config.data_dir / "gatehouse.sqlite3").exists():
        return f"the database ({database_target(config)}) is not migrated (no file yet): run `ak migrate` first"
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        connection.close()
        text = str(exc).strip()
        return f"the database ({database_target(config)}) cannot be read: {text.splitlines()[0] if text else exc!r}"
    if pending:
        return (f"the database ({database_target(config)}) is not migrated ({len(pending)} migrations not "
                "applied): run `ak migrate` first")
    return None
