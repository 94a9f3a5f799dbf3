"""Run a real standalone ``ak outpost <kind>`` for a test or a benchmark: a subprocess on free 127.0.0.1
ports whose only input is its environment (AUTHENTIK_HOST, AUTHENTIK_TOKEN, the listeners), with its own
state directory and log file.

    outpost = OutpostProcess(tmp_path / "outpost", core.url, token)
    outpost.start()
    outpost.wait_connected()
    httpx.get(outpost.url + "/outpost.goauthentik.io/auth/nginx", headers=...)
    outpost.stop()

AUTHENTIK_* variables of the calling process are not passed on, so the outpost sees only what it is given.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.server import REPO, free_port

CONNECT_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass
class OutpostProcess:
    workdir: Path
    core_url: str
    token: str
    kind: str = "proxy"
    workers: int = 1
    redis_db: int | None = None  # None: no Redis (memory store); else AUTHENTIK_REDIS__DB on 127.0.0.1:6379
    browser_host: str = ""
    env: dict[str, str] = field(default_factory=dict)  # anything else, last
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def log(self) -> Path:
        return self.workdir / "outpost.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHENTIK_")}
        env.update({"AUTHENTIK_HOST": self.core_url, "AUTHENTIK_TOKEN": self.token,
                    "AUTHENTIK_LISTEN__HTTP": self.address,
                    "AUTHENTIK_LISTEN__HTTPS": f"127.0.0.1:{self.https_port}",
                    "AUTHENTIK_LISTEN__METRICS": f"127.0.0.1:{self.metrics_port}",
                    "AUTHENTIK_OUTPOST_STATE_DIR": str(self.workdir), "PYTHONUNBUFFERED": "1"})
        if self.browser_host:
            env["AUTHENTIK_HOST_BROWSER"] = self.browser_host
        if self.redis_db is not None:
            env.update({"AUTHENTIK_REDIS__HOST": "127.0.0.1", "AUTHENTIK_REDIS__DB": str(self.redis_db)})
        env.update(self.env)
        return env

    def start(self) -> None:
        """Launch; ``wait_connected()`` waits for the configuration and the websocket."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "core.cli", "outpost", self.kind, "--workers", str(self.workers)],
                cwd=REPO, env=self.environment(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def ready(self) -> dict | None:
        """``/-/health/ready/`` as JSON once configured, else None; raises if the process has exited."""
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"ak outpost {self.kind} exited ({self.process and self.process.returncode}):\n"
                                 f"{self.tail()}")
        try:
            response = httpx.get(self.url + "/-/health/ready/", timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_connected(self, timeout: float = CONNECT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not (self.ready() or {}).get("core_connected"):
            if time.monotonic() > deadline:
                raise AssertionError(f"ak outpost {self.kind}: not configured and connected within {timeout:g} s:\n"
                                     f"{self.tail()}")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        """The main process and its --workers children."""
        assert self.process is not None
        found = [self.process.pid]
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():  # children of any of its threads
            found += [int(p) for p in (task / "children").read_text().split()]
        return found

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        return process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_connected()
