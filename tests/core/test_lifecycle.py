"""``ak healthcheck`` in a server's and in a worker's container: the recorded mode, the worker's heartbeat,
and the real commands run as a container runs them (a subprocess whose only input is its environment)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from core import lifecycle
from tests.support.server import REPO, core_env, create_database, drop_database, free_port, start_core

AK = [sys.executable, "-m", "core.cli"]


def test_mode_defaults_to_server_and_is_recorded(tmp_path):
    assert lifecycle.recorded_mode(str(tmp_path)) == "server"
    lifecycle.record_mode("worker", str(tmp_path))
    assert lifecycle.recorded_mode(str(tmp_path)) == "worker"
    (tmp_path / lifecycle.MODE_FILE).write_text("nonsense\n")
    assert lifecycle.recorded_mode(str(tmp_path)) == "server"
    with pytest.raises(ValueError, match="expected one of server, worker"):
        lifecycle.record_mode("proxy", str(tmp_path))


def test_heartbeat_promise_and_overdue(tmp_path):
    where = str(tmp_path)
    assert "no worker heartbeat" in lifecycle.heartbeat_problem(where)
    lifecycle.beat(60, where, now=1000.0)
    due = 1000.0 + 60 + lifecycle.HEARTBEAT_GRACE_S
    assert lifecycle.heartbeat_problem(where, now=due) is None
    problem = lifecycle.heartbeat_problem(where, now=due + 5)
    assert "overdue by 5 s" in problem and "stuck or stopped" in problem
    lifecycle.stopped(where)
    assert "no worker heartbeat" in lifecycle.heartbeat_problem(where, now=1000.0)
    (tmp_path / lifecycle.HEARTBEAT_FILE).write_text("garbage")
    assert "no worker heartbeat" in lifecycle.heartbeat_problem(where)


def test_a_planted_symlink_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / lifecycle.MODE_FILE).symlink_to(victim)
    lifecycle.record_mode("worker", str(tmp_path))
    assert victim.read_text() == "keep me"
    assert not (tmp_path / lifecycle.MODE_FILE).is_symlink()


def test_redis_problem_names_the_failure():
    assert lifecycle.redis_problem(None) is None
    assert lifecycle.redis_problem(f"redis://127.0.0.1:{free_port()}/0").startswith("redis unreachable:")


def _env(tmp_path, **extra) -> dict:
    env = core_env(tmp_path / "data", extra)
    env["TMPDIR"] = str(tmp_path)  # the container's own temporary directory
    return env


@pytest.fixture
def container_env(tmp_path):
    """A container's environment; in the PostgreSQL pass with a database of its own, as start_core makes."""
    env = _env(tmp_path)
    (tmp_path / "data").mkdir()
    database = None
    if env.get("AUTHENTIK_POSTGRESQL__HOST"):
        database = env["AUTHENTIK_POSTGRESQL__NAME"] = create_database(env)
    yield env
    if database:
        drop_database(env, database)


def _ak(env, *args, timeout=120):
    return subprocess.run([*AK, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _until(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


@pytest.mark.e2e
def test_worker_container_healthcheck(tmp_path, container_env):
    """The seeds' `command: worker --concurrency 4`, then the image's `ak healthcheck` beside it."""
    env = container_env
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([*AK, "worker", "--concurrency", "4", "--interval", "2"], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        _until(lambda: (tmp_path / lifecycle.HEARTBEAT_FILE).exists() or worker.poll() is not None, 90,
               "first heartbeat")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        result = _ak(env, "healthcheck")
        assert result.returncode == 0, result.stderr
        assert "healthy: worker heartbeat current, database" in result.stdout
        assert "--concurrency 4 accepted" in (tmp_path / "worker.log").read_text()

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        result = _ak(env, "healthcheck")
        assert result.returncode != 0
        assert "unhealthy worker: no worker heartbeat" in result.stderr
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        log.close()


@pytest.mark.e2e
def test_worker_healthcheck_checks_the_database_too(tmp_path):
    env = _env(tmp_path, AUTHENTIK_POSTGRESQL__HOST="127.0.0.1", AUTHENTIK_POSTGRESQL__PORT=str(free_port()),
               AUTHENTIK_REDIS__HOST="127.0.0.1", AUTHENTIK_REDIS__PORT=str(free_port()))
    lifecycle.record_mode("worker", str(tmp_path))
    lifecycle.beat(60, str(tmp_path))  # a live heartbeat: only the services are missing
    result = _ak(env, "healthcheck")
    assert result.returncode != 0
    assert "database unreachable" in result.stderr and "redis unreachable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_server_container_healthcheck(tmp_path):
    core = start_core(tmp_path / "data", env={"TMPDIR": str(tmp_path)}, wait="/-/health/live/")
    try:
        assert lifecycle.recorded_mode(str(tmp_path)) == "server"
        result = _ak(core.env, "healthcheck")
        assert result.returncode == 0, result.stderr
        assert f"http://127.0.0.1:{core.http_port}/-/health/live/ answered 200" in result.stdout
    finally:
        core.stop()
    result = _ak(core.env, "healthcheck")
    assert result.returncode != 0 and "unhealthy:" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("--concurrency", "0"), "--concurrency 0: expected a whole number of 1 or more"),
    (("--interval", "0"), "--interval 0: expected a number of seconds above 0"),
])
def test_worker_refuses_bad_arguments(tmp_path, args, message):
    result = _ak(_env(tmp_path), "worker", *args)
    assert result.returncode != 0 and message in result.stderr


def test_seed_database_probe_runs_in_the_image_environment(tmp_path, container_env):
    """Seed: `docker compose exec authentik-server python -c "import os; from django.db import connection;
    connection.ensure_connection(); print('Connected')"`, in the environment Dockerfile.core sets."""
    env = container_env
    for line in (REPO / "Dockerfile.core").read_text().split("ENV ", 1)[1].splitlines():
        name, _, value = line.strip().rstrip("\\").strip().partition("=")
        if name == "DJANGO_SETTINGS_MODULE":
            env[name] = value
        if not line.rstrip().endswith("\\"):
            break
    assert env.get("DJANGO_SETTINGS_MODULE") == "core.settings", "Dockerfile.core must set DJANGO_SETTINGS_MODULE"
    result = subprocess.run([sys.executable, "-c", "import os; from django.db import connection; "
                             "connection.ensure_connection(); print('Connected')"],
                            cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Connected"
