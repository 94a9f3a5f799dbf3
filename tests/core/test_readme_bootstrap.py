"""The README's bootstrap example, pasted as a newcomer pastes it (issue 8, item 17): the first block in one
terminal (it keeps it: ``make run`` serves), the second in another terminal that shares nothing with the
first but the directory. The blocks are read from README.md, so the test breaks when they do.

Only two things differ from a newcomer's machine: ``make`` is a stand-in on PATH that runs what ``make run``
runs (``ak migrate``, then ``ak server``) with this interpreter instead of building .venv, and the server
listens on free ports, so ``localhost:9000`` in the second block is replaced by its address.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support.server import REPO, core_env, create_database, drop_database, free_port

README = REPO / "README.md"
LEAD = "To create the administrator\nwithout a person"


def bootstrap_blocks() -> tuple[str, str]:
    text = README.read_text()
    start = text.index(LEAD)
    blocks = re.findall(r"```sh\n(.*?)```", text[start:], flags=re.S)
    return blocks[0], blocks[1]


def test_the_blocks_are_what_the_test_runs():
    first, second = bootstrap_blocks()
    assert first.rstrip().endswith("make run") and "export AUTHENTIK_BOOTSTRAP_TOKEN" in first
    assert "localhost:9000" in second and "AUTHENTIK_BOOTSTRAP_TOKEN" not in second  # a new terminal has none


@pytest.mark.e2e
def test_bootstrap_example_works_pasted_in_two_terminals(tmp_path):
    first, second = bootstrap_blocks()
    checkout, shims = tmp_path / "checkout", tmp_path / "bin"
    checkout.mkdir()
    shims.mkdir()
    make = shims / "make"
    make.write_text(f'#!/bin/sh\n[ "$1" = run ] || exit 2\n"{sys.executable}" -m core.cli migrate --skip-checks '
                    f'&& exec "{sys.executable}" -m core.cli server\n')
    make.chmod(0o755)
    port = free_port()
    env = core_env(checkout / "data", {"PATH": f"{shims}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)},
                   ports=(port, free_port(), free_port()))
    env.pop("AUTHENTIK_SECRET_KEY")  # a newcomer has none: generated into data/
    database = None
    if env.get("AUTHENTIK_POSTGRESQL__HOST"):
        database = env["AUTHENTIK_POSTGRESQL__NAME"] = create_database(env)
    log = open(tmp_path / "terminal-1.log", "wb")  # noqa: SIM115 - closed below
    terminal_1 = subprocess.Popen(["bash", "-e", "-c", first], cwd=checkout, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + 120, None
        while time.monotonic() < deadline and terminal_1.poll() is None:
            if b'"listening"' in (tmp_path / "terminal-1.log").read_bytes():
                break
            time.sleep(0.2)
        assert terminal_1.poll() is None, (tmp_path / "terminal-1.log").read_text()
        assert (checkout / "data" / "bootstrap-token").stat().st_mode & 0o077 == 0  # only the owner reads it
        terminal_2_env = {k: v for k, v in env.items() if not k.startswith("AUTHENTIK_")}
        answer = subprocess.run(["bash", "-e", "-c", second.replace("localhost:9000", f"127.0.0.1:{port}")],
                                cwd=checkout, env=terminal_2_env, capture_output=True, text=True, timeout=60)
        assert answer.returncode == 0, answer.stderr
        users = json.loads(answer.stdout)
        assert "akadmin" in [user["username"] for user in users["results"]], answer.stdout
    finally:
        if terminal_1.poll() is None:
            os.killpg(terminal_1.pid, signal.SIGTERM)
            try:
                terminal_1.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(terminal_1.pid, signal.SIGKILL)
                terminal_1.wait(10)
        log.close()
        if database:
            drop_database(env, database)
