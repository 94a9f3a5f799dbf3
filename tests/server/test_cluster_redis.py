"""Redis with a password and TLS (AUTHENTIK_REDIS__PASSWORD, __TLS, __TLS_REQS, __TLS_CA_CERT) for real: a
redis-server started here with only a TLS port and ``requirepass``, and ``ak server`` on it."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from core.config import load
from core.lifecycle import redis_problem
from protocols.tls import self_signed_pem
from tests.conftest import need
from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.server.test_cluster_db import login
from tests.support.postgres import wait_port
from tests.support.server import free_port, start_core

PASSWORD = "redis-secret-4f1a"  # noqa: S105 - test value


@pytest.fixture
def tls_redis(tmp_path):
    need(shutil.which("redis-server") is not None, "redis-server")
    pem = tmp_path / "redis.pem"
    pem.write_bytes(self_signed_pem(("127.0.0.1", "localhost")))
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(pem), "--tls-key-file", str(pem), "--tls-auth-clients", "no",
         "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(port, "redis-server", process)
        yield port, pem
    finally:
        process.terminate()
        process.wait(10)


def redis_env(port: int, **more: str) -> dict:
    return {"AUTHENTIK_REDIS__HOST": "127.0.0.1", "AUTHENTIK_REDIS__PORT": str(port), "AUTHENTIK_REDIS__DB": "3",
            "AUTHENTIK_REDIS__PASSWORD": PASSWORD, "AUTHENTIK_REDIS__TLS": "true", **more}


def url(tmp_path, env: dict) -> str:
    return load({"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_SECRET_KEY": "k" * 40, **env}).redis.url


def test_tls_and_password_are_checked(tmp_path, tls_redis):
    port, ca = tls_redis
    assert redis_problem(url(tmp_path, redis_env(port, AUTHENTIK_REDIS__TLS_CA_CERT=str(ca)))) is None
    # the server's certificate is checked by default: not signed by a system CA
    unverified = redis_problem(url(tmp_path, redis_env(port)))
    assert unverified and "certificate verify failed" in unverified
    assert redis_problem(url(tmp_path, redis_env(port, AUTHENTIK_REDIS__TLS_REQS="none"))) is None
    wrong = redis_problem(url(tmp_path, redis_env(port, AUTHENTIK_REDIS__TLS_CA_CERT=str(ca),
                                                  AUTHENTIK_REDIS__PASSWORD="wrong")))
    assert wrong and ("WRONGPASS" in wrong or "invalid" in wrong.lower()), wrong
    plain = redis_problem(url(tmp_path, {**redis_env(port), "AUTHENTIK_REDIS__TLS": "false"}))
    assert plain  # TLS only: a plain-text client gets nowhere


def test_ak_server_on_redis_with_tls_and_a_password(tmp_path, tls_redis):
    port, ca = tls_redis
    env = redis_env(port, AUTHENTIK_REDIS__TLS_CA_CERT=str(ca))
    core = start_core(tmp_path / "core", env=env, bootstrap_password=ADMIN_PASSWORD, bootstrap_token=ADMIN_TOKEN)
    try:
        browser = login(core.url)
        assert browser.get("/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"
        api = httpx.Client(base_url=core.url + "/api/v3", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                           timeout=30)
        assert api.get("/core/users/").status_code == 200
        import redis

        client = redis.Redis.from_url(url(tmp_path, env))
        assert client.dbsize() > 0  # the cache and the session cache are there
        assert "Traceback" not in core.output(), core.tail()
    finally:
        core.stop()
