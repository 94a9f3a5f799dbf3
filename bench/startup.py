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


def interpreter_floor_s() -> float:
    """Reference measured in the same run: starting this Python and importing Django, nothing else."""
    import subprocess

    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import django"], check=True)
    return time.monotonic() - started


def line(label: str, value: float, goal: float, unit: str) -> None:
    verdict = "within goal" if value <= goal else "OVER goal"
    print(f"  {label:<34} {value:8.2f} {unit:<3} (goal <= {goal:g} {unit}: {verdict})", flush=True)


def main() -> None:
    floor = interpreter_floor_s()
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
        core = start_core(Path(tmp), bootstrap_password="bench-password-1")
        try:
            first = time.monotonic() - core.started_at
            second = core.restart()
            time.sleep(IDLE_S)
            rss = rss_mb(core.pid)
        finally:
            core.stop()
    print(f"  reference: python + import django  {floor:8.2f} s", flush=True)
    line("ready, fresh data directory", first, READY_GOAL_S, "s")
    line("ready, second start (data present)", second, READY_GOAL_S, "s")
    line(f"idle RSS after {IDLE_S:g} s", rss, RSS_GOAL_MB, "MB")


if __name__ == "__main__":
    main()
