"""Run a real ``ak server`` for a test: a subprocess on free 127.0.0.1 ports with its own data directory.

    core = start_core(tmp_path, bootstrap_token="...")
    httpx.get(core.url + "/api/v3/core/users/", headers=...)
    core.stop()

With AUTHENTIK_POSTGRESQL__HOST in the environment each call gets a fresh database (gh_<random>),
dropped by ``stop()``; AUTHENTIK_REDIS__* is passed on as is. Anything else AUTHENTIK_* in the test
process's environment is NOT passed on, so a test sees only what it asked for.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
SECRET_KEY = "test-server-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
INHERITED_PREFIXES = ("AUTHENTIK_POSTGRESQL__", "AUTHENTIK_REDIS__")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_admin_conninfo(env: dict) -> dict:
    return {
        "host": env["AUTHENTIK_POSTGRESQL__HOST"],
        "port": int(env.get("AUTHENTIK_POSTGRESQL__PORT") or 5432),
        "user": env.get("AUTHENTIK_POSTGRESQL__USER", "authentik"),
        "password": env.get("AUTHENTIK_POSTGRESQL__PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
        "connect_timeout": 10,
    }


def create_database(env: dict) -> str:
    import psycopg

    name = f"gh_{secrets.token_hex(6)}"
    with psycopg.connect(**_pg_admin_conninfo(env)) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(env: dict, name: str) -> None:
    import psycopg

    with psycopg.connect(**_pg_admin_conninfo(env)) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class CoreProcess:
    data_dir: Path
    env: dict
    args: tuple[str, ...]
    http_port: int
    https_port: int
    metrics_port: int
    log_path: Path
    database: str | None = None
    cwd: Path = REPO  # another directory (and PYTHONPATH) runs an installed copy instead of the checkout
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        """Everything the server printed (all starts), for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def launch(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child; closed below
        try:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "core.cli", "server", *self.args],
                cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def wait(self, path: str = "/-/health/ready/", timeout: float = READY_TIMEOUT) -> float:
        """Poll ``path`` until it answers 200; returns seconds since launch. Raises with the log tail."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    code = None if self.process is None else self.process.returncode
                    raise RuntimeError(f"ak server exited with {code} before {path} answered 200:\n{self.tail()}")
                try:
                    response = client.get(self.url + path)
                    if response.status_code == 200:
                        return time.monotonic() - self.started_at
                    last = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.05)
        raise TimeoutError(f"{path} did not answer 200 within {timeout:.0f} s (last: {last}):\n{self.tail()}")

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code. Keeps data and database."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, wait: bool = True) -> float | None:
        """Stop and start again on the same ports with the same data (and database)."""
        self.terminate()
        self.launch()
        return self.wait() if wait else None

    def stop(self) -> int | None:
        """Stop the server and drop its PostgreSQL database, if it made one."""
        try:
            return self.terminate()
        finally:
            if self.database:
                drop_database(self.env, self.database)
                self.database = None

    def __enter__(self) -> CoreProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def core_env(data_dir: Path, env: dict | None = None, bootstrap_password: str | None = None,
             bootstrap_token: str | None = None, ports: tuple[int, int, int] | None = None) -> dict:
    """The child's environment: this process's minus AUTHENTIK_* (bar PostgreSQL/Redis), plus ours."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("AUTHENTIK_") or k.startswith(INHERITED_PREFIXES)}
    full.pop("DJANGO_SETTINGS_MODULE", None)
    http_port, https_port, metrics_port = ports or (free_port(), free_port(), free_port())
    full.update({
        "AUTHENTIK_DATA_DIR": str(data_dir),
        "AUTHENTIK_SECRET_KEY": SECRET_KEY,
        "AUTHENTIK_LISTEN__HTTP": f"127.0.0.1:{http_port}",
        "AUTHENTIK_LISTEN__HTTPS": f"127.0.0.1:{https_port}",
        "AUTHENTIK_LISTEN__METRICS": f"127.0.0.1:{metrics_port}",
        "PYTHONUNBUFFERED": "1",
    })
    if bootstrap_password:
        full["AUTHENTIK_BOOTSTRAP_PASSWORD"] = bootstrap_password
    if bootstrap_token:
        full["AUTHENTIK_BOOTSTRAP_TOKEN"] = bootstrap_token
    full.update(env or {})
    return full


def start_core(tmp_path: Path, env: dict | None = None, bootstrap_token: str | None = None,
               bootstrap_password: str | None = None, args: tuple[str, ...] = (),
               wait: str | None = "/-/health/ready/", timeout: float = READY_TIMEOUT,
               cwd: Path = REPO) -> CoreProcess:
    """Launch ``ak server`` with AUTHENTIK_DATA_DIR=tmp_path and wait until ``wait`` answers 200.

    ``wait=None`` returns right after launching (for tests of failing starts).
    """
    data_dir = Path(tmp_path)
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = (free_port(), free_port(), free_port())
    full = core_env(data_dir, env, bootstrap_password, bootstrap_token, ports)
    # The listeners come from the final environment, so a test may override them (even with junk).
    def port_of(name: str, default: int) -> int:
        host_port = full.get(name, "")
        tail = host_port.rpartition(":")[2]
        return int(tail) if tail.isdigit() else default

    database = None
    if full.get("AUTHENTIK_POSTGRESQL__HOST") and "AUTHENTIK_POSTGRESQL__NAME" not in (env or {}):
        database = create_database(full)
        full["AUTHENTIK_POSTGRESQL__NAME"] = database
    core = CoreProcess(
        data_dir=data_dir, env=full, args=tuple(args),
        http_port=port_of("AUTHENTIK_LISTEN__HTTP", ports[0]),
        https_port=port_of("AUTHENTIK_LISTEN__HTTPS", ports[1]),
        metrics_port=port_of("AUTHENTIK_LISTEN__METRICS", ports[2]),
        log_path=data_dir / "server.log", database=database, cwd=cwd)
    core.launch()
    if wait:
        try:
            core.wait(wait, timeout)
        except BaseException:
            core.stop()
            raise
    return core


def api_call(api, method: str, path: str, **kwargs):
    """One request through ``api`` (an httpx.Client on /api/v3) that must succeed: its JSON ({} when empty);
    a failure asserts with the status and the start of the answer."""
    response = api.request(method, path, **kwargs)
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:300]}"
    return response.json() if response.content else {}
