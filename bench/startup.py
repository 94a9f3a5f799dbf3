"""``python -m bench startup``: time from launching ``ak server`` to /-/health/ready/ answering 200, on a
fresh data directory and again with the data present, and the idle RSS after 5 s.

Goals (issue "Foundation"): ready <= 3 s, idle RSS <= 150 MB. Figures are printed against the goals,
never asserted. Uses the backends of the environment (SQLite by default; PostgreSQL/Redis when
AUTHENTIK_POSTGRESQL__HOST / AUTHENTIK_REDIS__HOST are set).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.support.server import start_core

READY_GOAL_S = 3.0
RSS_GOAL_MB = 150.0
IDLE_S = 5.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def interpreter_floor_s(data_dir: Path) -> float:
    """Reference measured in the same run: this Python importing and setting up the core's Django (every app,
    the settings, the configuration), without migrating or serving: the part of start-up that is imports."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHENTIK_")
           or k.startswith(("AUTHENTIK_POSTGRESQL__", "AUTHENTIK_REDIS__"))}
    env.update(DJANGO_SETTINGS_MODULE="core.settings", AUTHENTIK_DATA_DIR=str(data_dir),
               AUTHENTIK_SECRET_KEY="bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import django; django.setup()"], check=True, env=env)
    return time.monotonic() - started


def line(label: str, value: float, goal: float, unit: str) -> None:
    verdict = "within goal" if value <= goal else "OVER goal"
    print(f"  {label:<34} {value:8.2f} {unit:<3} (goal <= {goal:g} {unit}: {verdict})", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
        floor = interpreter_floor_s(Path(tmp) / "floor")
        core = start_core(Path(tmp), bootstrap_password="bench-password-1")
        try:
            first = time.monotonic() - core.started_at
            second = core.restart()
            time.sleep(IDLE_S)
            rss = rss_mb(core.pid)
        finally:
            core.stop()
    print(f"  reference: python + django.setup() {floor:7.2f} s", flush=True)
    line("ready, fresh data directory", first, READY_GOAL_S, "s")
    line("ready, second start (data present)", second, READY_GOAL_S, "s")
    line(f"idle RSS after {IDLE_S:g} s", rss, RSS_GOAL_MB, "MB")


if __name__ == "__main__":
    main()
