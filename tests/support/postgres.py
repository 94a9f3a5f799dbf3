"""Real PostgreSQL helpers for cluster tests: PgBouncer in front of the machine's PostgreSQL, and a
primary with a streaming replica of its own (initdb + pg_basebackup in temporary directories).

Both run as the ``postgres`` user when the tests run as root (PostgreSQL and PgBouncer refuse root), on
free 127.0.0.1 ports; every process is stopped and every directory removed by ``stop()``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import free_port

MACHINE_PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
START_TIMEOUT = 60.0


def machine_postgres_answers() -> bool:
    import psycopg

    try:
        with psycopg.connect(**MACHINE_PG, dbname="postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program (initdb, pg_ctl, postgres): on PATH, else Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL and PgBouncer will not run as root: run them as ``postgres`` then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _shared_dir(prefix: str) -> Path:
    """A temporary directory the ``postgres`` user may use (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


def wait_port(port: int, what: str, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text() if log else ''}")
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f} s")


@dataclass
class PgBouncer:
    """PgBouncer in transaction pooling mode in front of the machine's PostgreSQL (trust auth, any database)."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @classmethod
    def start(cls) -> PgBouncer:
        workdir = _shared_dir("gh-pgbouncer-")
        port = free_port()
        (workdir / "users.txt").write_text('"postgres" ""\n')
        (workdir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={MACHINE_PG['host']} port={MACHINE_PG['port']}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {workdir / 'users.txt'}\nadmin_users = postgres\n"
            "pool_mode = transaction\n"
            # few server connections for many clients: two sessions' transactions share one server connection
            "default_pool_size = 3\nmax_client_conn = 200\n"
            f"logfile = {workdir / 'pgbouncer.log'}\n")
        for path in workdir.iterdir():
            path.chmod(0o644)
        bouncer = cls(port=port, workdir=workdir)
        as_user = ["-u", "postgres"] if os.geteuid() == 0 else []  # PgBouncer drops root itself
        bouncer.process = subprocess.Popen(["pgbouncer", *as_user, str(workdir / "pgbouncer.ini")],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_port(port, "pgbouncer", bouncer.process, workdir / "pgbouncer.log")
        except BaseException:
            bouncer.stop()
            raise
        return bouncer

    def show(self, what: str) -> list[dict]:
        """``SHOW <what>`` on PgBouncer's admin console (simple query protocol only: a client-side cursor)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="pgbouncer",
                             autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cursor = conn.execute(f"SHOW {what}")
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def log(self) -> str:
        path = self.workdir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)
