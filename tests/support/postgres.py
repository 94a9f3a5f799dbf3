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


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(_as_postgres(argv), capture_output=True, text=True, timeout=START_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@dataclass
class StreamingPair:
    """A PostgreSQL primary (initdb) and a hot standby streaming from it (pg_basebackup -R), both logging every
    statement to their own log (``log_statement = all``), so a test sees which server ran what."""

    primary_port: int
    replica_port: int
    workdir: Path
    running: list[Path] = field(default_factory=list)

    @property
    def primary_dir(self) -> Path:
        return self.workdir / "primary"

    @property
    def replica_dir(self) -> Path:
        return self.workdir / "replica"

    @classmethod
    def available(cls) -> str | None:
        """None when one can be started here, else what is missing."""
        missing = [name for name in ("initdb", "pg_ctl", "pg_basebackup") if not postgres_bin(name)]
        if missing:
            return "PostgreSQL server programs " + ", ".join(missing)
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "runuser (to run PostgreSQL as the postgres user)"
        return None

    @classmethod
    def start(cls) -> StreamingPair:
        pair = cls(primary_port=free_port(), replica_port=free_port(), workdir=_shared_dir("gh-pgpair-"))
        try:
            pair._start()
        except BaseException:
            pair.stop()
            raise
        return pair

    def _start(self) -> None:
        _run([postgres_bin("initdb"), "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust",
              "--no-sync", "-E", "UTF8", "--locale=C"], "initdb")
        with open(self.primary_dir / "postgresql.conf", "a") as conf:
            conf.write("listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nwal_level = replica\n"
                       "max_wal_senders = 4\nfsync = off\nlog_statement = 'all'\n"
                       "log_line_prefix = '%m [%p] %d '\n")
        with open(self.primary_dir / "pg_hba.conf", "w") as hba:
            hba.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
        self._pg_ctl(self.primary_dir, self.primary_port, "primary.log")
        _run([postgres_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
              "-D", str(self.replica_dir), "-R", "-X", "stream", "--no-sync"], "pg_basebackup")
        self._pg_ctl(self.replica_dir, self.replica_port, "replica.log")

    def _pg_ctl(self, data: Path, port: int, log: str) -> None:
        _run([postgres_bin("pg_ctl"), "-D", str(data), "-l", str(self.workdir / log), "-w", "-t",
              str(int(START_TIMEOUT)), "-o", f"-p {port}", "start"], f"pg_ctl start {data.name}")
        self.running.append(data)

    def log(self, which: str) -> str:
        path = self.workdir / f"{which}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def connect(self, port: int, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, autocommit=True,
                               connect_timeout=10)

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        with self.connect(self.primary_port) as primary:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with self.connect(self.replica_port) as replica:
            while True:
                done = replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]
                if done:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {target} within {timeout:.0f} s")
                time.sleep(0.02)

    def stop(self) -> None:
        for data in reversed(self.running):
            subprocess.run(_as_postgres([postgres_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           capture_output=True, timeout=START_TIMEOUT)
        self.running.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb, trust, fsync off) on a free 127.0.0.1 port, which the
    test may stop and start again (fault tests); never the machine's shared server."""

    port: int
    workdir: Path
    running: bool = False

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @classmethod
    def start(cls) -> PrivatePostgres:
        problem = StreamingPair.available()
        if problem:
            raise RuntimeError(problem)
        server = cls(port=free_port(), workdir=_shared_dir("gh-pg-"))
        try:
            _run([postgres_bin("initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8", "--locale=C"], "initdb")
            with open(server.data / "postgresql.conf", "a") as conf:
                conf.write("listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n")
            server.resume()
        except BaseException:
            server.stop()
            raise
        return server

    def resume(self) -> None:
        _run([postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.workdir / "server.log"), "-w", "-t",
              str(int(START_TIMEOUT)), "-o", f"-p {self.port}", "start"], "pg_ctl start")
        self.running = True

    def halt(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast``: clients are disconnected, as in a restart or a failover."""
        _run([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], "pg_ctl stop")
        self.running = False

    def connect(self, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True,
                               connect_timeout=10)

    def stop(self) -> None:
        if self.running:
            subprocess.run(_as_postgres([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                                         "stop"]), capture_output=True, timeout=START_TIMEOUT)
            self.running = False
        shutil.rmtree(self.workdir, ignore_errors=True)
