"""The login rate limit holds under concurrency (THREATS 13): 40 wrong passwords sent at once to a real
``ak server`` (its thread pool, its database: SQLite, or PostgreSQL + Redis when the environment names
them) get exactly PAIR_LIMIT password checks. Before the check-and-reserve was atomic, every attempt in
flight between the read of the counter and the write of the failure got a free check (6 of 40 seen).

Bounded: 40 attempts, each on its own connection, every request with a timeout.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from core.policies.reputation import PAIR_LIMIT
from tests.support.server import start_core

ATTEMPTS = 40
ADMIN_PASSWORD = "concurrency-admin-pw"  # noqa: S105 - a test password
URL = "/api/v3/flows/executor/default-authentication-flow/?query="


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    server = start_core(tmp_path_factory.mktemp("core"), bootstrap_password=ADMIN_PASSWORD)
    yield server
    server.stop()


def _to_password(client: httpx.Client, uid: str) -> None:
    assert client.get(URL).json()["component"] == "ak-stage-identification"
    answer = client.post(URL, json={"component": "ak-stage-identification", "uid_field": uid})
    assert answer.status_code == 302, answer.text
    assert client.get(URL).json()["component"] == "ak-stage-password"


def _answer(client: httpx.Client, password: str) -> str:
    response = client.post(URL, json={"component": "ak-stage-password", "password": password})
    body = client.get(URL).json() if response.status_code == 302 else response.json()
    if body["component"] == "xak-flow-redirect":
        return "ok"
    errors = body.get("response_errors", {}).get("password") or [{"code": body["component"]}]
    return errors[0]["code"]


def test_forty_concurrent_wrong_passwords_get_exactly_the_limit_checked(core):
    clients = [httpx.Client(base_url=core.url, timeout=60.0) for _ in range(ATTEMPTS)]
    try:
        with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
            list(pool.map(lambda c: _to_password(c, "akadmin"), clients))
            start = threading.Barrier(ATTEMPTS, timeout=60)

            def go(index: int) -> str:
                start.wait()  # all 40 POST their password at the same moment
                return _answer(clients[index], f"wrong-{index}")

            results = list(pool.map(go, range(ATTEMPTS)))
    finally:
        for client in clients:
            client.close()
    assert results.count("invalid") == PAIR_LIMIT, sorted(results)
    assert results.count("throttled") == ATTEMPTS - PAIR_LIMIT, sorted(results)
    # and the owner, from an address with no failures, still logs in (outposts delegate one; here the
    # request comes through a trusted peer naming another client address)
    with httpx.Client(base_url=core.url, timeout=60.0, headers={"X-Forwarded-For": "203.0.113.77"}) as owner:
        _to_password(owner, "akadmin")
        assert _answer(owner, ADMIN_PASSWORD) == "ok"
