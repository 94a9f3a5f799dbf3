"""Run ``ak`` commands as an operator does: a subprocess whose only input is its environment.

    with operator_env(tmp_path) as env:
        result = ak(env, "migrate")
        line = one_error_line(ak(env, "create_admin_group"))

``operator_env`` gives a data directory of its own and, in the PostgreSQL pass, a fresh database.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.server import REPO, core_env, create_database, drop_database

AK = [sys.executable, "-m", "core.cli"]


def ak(env: dict, *args: str, cwd: Path = REPO, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*AK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def operator_env(tmp_path: Path) -> Iterator[dict]:
    env = core_env(tmp_path / "data")
    env["TMPDIR"] = str(tmp_path)
    database = None
    if env.get("AUTHENTIK_POSTGRESQL__HOST"):
        database = env["AUTHENTIK_POSTGRESQL__NAME"] = create_database(env)
    try:
        yield env
    finally:
        if database:
            drop_database(env, database)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one line for people: no traceback. Besides it, stderr may hold the
    line naming the data directory and the one saying a wait for the database or Redis began."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and "data directory /" not in line and "waiting up to" not in line]
    assert len(lines) == 1, result.stderr
    return lines[0]
