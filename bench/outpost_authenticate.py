"""``python -m bench outpost_authenticate``: one LDAP bind through the core, Gatehouse's one POST against authentik's
executor round trips, on a real ``ak server`` (a fresh data directory; SQLite, then PostgreSQL + Redis with a fresh
database when both answer on 127.0.0.1).

- **one call**: ``POST /api/v3/outposts/ldap/<pk>/authenticate/`` (what ``CoreLink.authenticate`` sends), ``BINDS``
  times in a row. Client time per bind (loopback HTTP included), the view's own time (``Server-Timing: total``)
  and the argon2 verify inside it (``Server-Timing: hash``).
- **authentik's way**: the same flow driven as authentik's LDAP outpost does (reference §1.7, §3.2): executor GET,
  POST identification, 302 -> GET, POST password, 302 -> GET (MFA skipped, login), then ``check_access`` as the
  user: the requests per bind and the client time per bind, each bind with fresh cookies.

The bind flow is the default authentication flow (identification, password, MFA validation, login). No
thresholds: figures are printed for people (issue 9's goal: bind p50 through the core <= 60 ms with the hash).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.core_login import PG_ENV, reachable
from bench.measure import ok as _ok
from bench.measure import pct as _p
from tests.support.server import start_core

BINDS = 100
WARMUP = 5
ADMIN_TOKEN = "bench-authcall-token-0123456789abcdef"  # noqa: S105 - a throwaway bootstrap token
USER, PASSWORD = "bench-user", "bench-Password-1"  # noqa: S105
CLIENT_IP = "192.0.2.44"


def _setup(api: httpx.Client) -> tuple[int, str, str]:
    user = _ok(api.post("/api/v3/core/users/", json={"username": USER, "name": "Bench"}))
    _ok(api.post(f"/api/v3/core/users/{user['pk']}/set_password/", json={"password": PASSWORD}))
    flow = _ok(api.get("/api/v3/flows/instances/", params={"slug": "default-authentication-flow"}))["results"][0]
    provider = _ok(api.post("/api/v3/providers/ldap/", json={"name": "bench-ldap", "authorization_flow": flow["pk"],
                                                             "base_dn": "DC=ldap,DC=example,DC=com"}))
    _ok(api.post("/api/v3/core/applications/", json={"name": "LDAP", "slug": "bench-ldap",
                                                     "provider": provider["pk"]}))
    outpost = _ok(api.post("/api/v3/outposts/instances/", json={"name": "bench-ldap", "type": "ldap",
                                                                "providers": [provider["pk"]]}))
    key = _ok(api.get(f"/api/v3/core/tokens/{outpost['token_identifier']}/view_key/"))["key"]
    return provider["pk"], key, flow["slug"]


def _timing(header: str, name: str) -> float:
    found = re.search(rf"{name};dur=([0-9.]+)", header or "")
    return float(found.group(1)) if found else 0.0


def one_call(url: str, key: str, provider: int) -> dict:
    client_ms, view_ms, hash_ms = [], [], []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for i in range(WARMUP + BINDS):
            started = time.perf_counter()
            response = http.post(f"/api/v3/outposts/ldap/{provider}/authenticate/",
                                 json={"username": USER, "password": PASSWORD, "remote_ip": CLIENT_IP})
            elapsed = (time.perf_counter() - started) * 1000
            assert response.json()["result"] == "ok", response.text
            if i >= WARMUP:
                client_ms.append(elapsed)
                view_ms.append(_timing(response.headers.get("Server-Timing"), "total"))
                hash_ms.append(_timing(response.headers.get("Server-Timing"), "hash"))
    return {"client": client_ms, "view": view_ms, "hash": hash_ms, "requests": 1}


def authentik_way(url: str, key: str, provider: int, slug: str) -> dict:
    """authentik's outpost client: a cookie jar per bind, X-authentik-outpost-token on every request."""
    executor = f"/api/v3/flows/executor/{slug}/?{urlencode({'query': 'goauthentik.io/outpost/ldap=true'})}"
    headers = {"X-authentik-outpost-token": key, "X-authentik-remote-ip": CLIENT_IP}
    client_ms, counts = [], []
    for i in range(WARMUP + BINDS):
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            requests = 0

            def send(method: str, body: dict | None = None) -> dict:
                nonlocal requests
                requests += 1
                response = http.request(method, executor, json=body)
                if response.status_code == 302:
                    requests += 1
                    response = http.get(executor)
                return response.json()

            started = time.perf_counter()
            challenge = send("GET")
            for _ in range(10):  # authentik's client: at most 10 stages
                component = challenge["component"]
                if component == "xak-flow-redirect":
                    break
                answer = {"ak-stage-identification": {"uid_field": USER, "password": PASSWORD},
                          "ak-stage-password": {"password": PASSWORD},
                          "ak-stage-user-login": {"remember_me": True}}[component]
                challenge = send("POST", {"component": component, **answer})
            assert challenge["component"] == "xak-flow-redirect", challenge
            access = http.get(f"/api/v3/outposts/ldap/{provider}/check_access/", params={"app_slug": "bench-ldap"})
            requests += 1
            assert access.json()["access"]["passing"], access.text
            elapsed = (time.perf_counter() - started) * 1000
        if i >= WARMUP:
            client_ms.append(elapsed)
            counts.append(requests)
    return {"client": client_ms, "requests": statistics.median(counts)}


def run(label: str, env: dict | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-authcall-") as tmp:
        core = start_core(Path(tmp) / "core", env=env, bootstrap_token=ADMIN_TOKEN)
        try:
            with httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              timeout=30) as api:
                provider, key, slug = _setup(api)
            ours = one_call(core.url, key, provider)
            theirs = authentik_way(core.url, key, provider, slug)
        finally:
            core.stop()
    print(f"[{label}] {BINDS} LDAP binds of one user through the default authentication flow, sequential")
    print(f"  one call      : {ours['requests']} request/bind, client p50 {_p(ours['client'], 0.5):.1f} ms, "
          f"p99 {_p(ours['client'], 0.99):.1f} ms; view p50 {_p(ours['view'], 0.5):.1f} ms, of which argon2 "
          f"p50 {_p(ours['hash'], 0.5):.1f} ms")
    print(f"  authentik way : {theirs['requests']:.0f} requests/bind, client p50 {_p(theirs['client'], 0.5):.1f} ms, "
          f"p99 {_p(theirs['client'], 0.99):.1f} ms")


def main() -> None:
    run("sqlite", None)
    if reachable(5432, 6379):
        run("postgresql+redis", PG_ENV)
    else:
        print("[postgresql+redis] skipped: PostgreSQL 127.0.0.1:5432 and Redis 127.0.0.1:6379 are needed")


if __name__ == "__main__":
    main()
