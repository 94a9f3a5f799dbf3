"""Where a request's time goes, for bench/core_login.py: run as ``python -m bench._breakdown <client.json>`` with
the core's environment (the same data directory or database as the running server), it replays the bench's
password login, token request, userinfo and introspection in this process through Django's test client (the same middleware and views,
no HTTP and no thread pool) and prints one JSON line:

- per request: queries (count, and their time), the request's time and this thread's CPU time without a
  profiler (p50; the CPU time is steadier on a shared machine), and the
  inclusive time under cProfile of: SQL (statements and commits), policy evaluation, expressions in the
  evaluator processes, the password hash, JWT signing, the signing key's loading, event writes, template
  rendering and the session store. Inclusive: SQL inside a policy counts in both.

Not a benchmark on its own (no ``main``): core_login starts it while its server runs and prints the result.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from urllib.parse import urlencode

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

ROUNDS = 20
WARMUP = 3
# (label, path fragment of the file, function names): summed inclusive times under cProfile.
CATEGORIES = (
    ("sql", "django/db/backends/", ("_execute", "_executemany", "_commit", "_rollback", "_savepoint_commit")),
    ("connect", "django/db/backends/", ("connect",)),
    ("policies", "core/policies/engine.py", ("evaluate",)),
    ("expressions", "core/policies/isolation.py", ("run",)),
    ("hash", "django/contrib/auth/hashers.py", ("check_password",)),
    ("jwt", "jwt/api_jws.py", ("encode",)),
    ("signing key", "core/oidc/keys.py", ("signing_material",)),
    ("events", "core/events/record.py", ("record",)),
    ("templates", "django/template/", ("render_to_string", "get_template")),
    ("session", "django/contrib/sessions/", ("load", "save")),
)


def _inclusive(stats: pstats.Stats) -> dict[str, float]:
    """ms per category: the cumulative time of the outermost matching functions (a match called from another
    match of the same category is not added twice)."""
    out: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for label, fragment, names in CATEGORIES:
        keys = {k for k in raw if fragment in k[0] and k[2] in names}
        total = 0.0
        for key in keys:
            _, _, _, cumulative, callers = raw[key]
            # time reached from a caller that is itself in this category is inside that caller's figure
            inner = sum(v[3] for caller, v in callers.items() if caller in keys)
            total += max(0.0, cumulative - inner)
        out[label] = round(total * 1000, 2)
    return out


def _statement(sql: str) -> str:
    """``SELECT user`` / ``INSERT accesstoken``: the verb and the first table, without the app prefix."""
    words = sql.replace('"', " ").split()
    verb = words[0].upper() if words else "?"
    marker = {"SELECT": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM"}.get(verb)
    table = words[words.index(marker) + 1] if marker in words[:-1] else ""
    for prefix in ("authentik_providers_oauth2_", "authentik_core_", "authentik_policies_", "authentik_events_",
                   "authentik_admin_", "authentik_"):
        table = table.removeprefix(prefix)
    return f"{verb} {table}".strip()


def rs256_client(client: dict) -> dict:
    """A copy of the bench's client that signs with the managed RSA key (RS256), with its application; made here
    because the REST API has no endpoint for keypairs. Returns its credentials."""
    from core.accounts.models import Application
    from core.oidc.keys import default_signing_key
    from core.oidc.models import OAuth2Provider

    credentials = {"client_id": client["client_id"] + "-rs256", "client_secret": client["client_secret"]}
    if not OAuth2Provider.objects.filter(client_id=credentials["client_id"]).exists():
        source = OAuth2Provider.objects.get(client_id=client["client_id"])
        provider = OAuth2Provider.objects.create(
            name=source.name + "-rs256", authorization_flow=source.authorization_flow, client_type=source.client_type,
            redirect_uris=source.redirect_uris, signing_key=default_signing_key("rsa"), **credentials)
        provider.property_mappings.set(source.property_mappings.all())
        Application.objects.create(name="Bench RS256", slug="bench-rs256", provider=provider)
    return credentials


def main(client_path: str) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from bench import core_login as bench

    client = json.loads(open(client_path).read())  # noqa: SIM115, PTH123 - a small file
    http = Client(HTTP_HOST="127.0.0.1", HTTP_USER_AGENT="bench-breakdown")
    url = f"/api/v3/flows/executor/{bench.FLOW}/?query="
    token_body = urlencode({"grant_type": "client_credentials", "scope": "openid profile", **client})
    rs256 = rs256_client(client)
    rs256_body = urlencode({"grant_type": "client_credentials", "scope": "openid profile", **rs256})
    names = [*bench.STEPS, "token (client_credentials)", "token, RS256 client", "userinfo", "introspection"]
    machine = Client(HTTP_HOST="127.0.0.1", HTTP_USER_AGENT="bench-breakdown-rp")  # an RP: no cookies

    def steps():
        """The requests of one login and one token request, as callables returning the response."""
        state: dict = {}

        def landing():
            return http.get(state["to"])

        def token():
            response = machine.post("/application/o/token/", token_body,
                                    content_type="application/x-www-form-urlencoded")
            state["access"] = response.json()["access_token"]
            return response

        def login_done():
            response = http.get(url)
            state["to"] = response.json()["to"]
            return response

        return [
            lambda: (http.cookies.clear(), http.get(url))[1],
            lambda: http.post(url, {"component": "ak-stage-identification", "uid_field": bench.USER},
                              content_type="application/json"),
            lambda: http.get(url),
            lambda: http.post(url, {"component": "ak-stage-password", "password": bench.PASSWORD},
                              content_type="application/json"),
            login_done,
            landing,
            token,
            lambda: machine.post("/application/o/token/", rs256_body,
                                 content_type="application/x-www-form-urlencoded"),
            lambda: machine.get("/application/o/userinfo/", headers={"Authorization": f"Bearer {state['access']}"}),
            lambda: machine.post("/application/o/introspect/", urlencode({"token": state["access"], **client}),
                                 content_type="application/x-www-form-urlencoded"),
        ]

    queries: dict[str, list[int]] = {n: [] for n in names}
    sql_ms: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    counted: list[float] = []
    statements: list[str] = []
    seen: dict[str, list[str]] = {}

    def count(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            counted.append(time.perf_counter() - started)
            statements.append(_statement(sql))

    def check(name, response):
        if response.status_code >= 400:
            raise RuntimeError(f"{name}: {response.status_code} {response.content[:300]!r}")

    for round_ in range(WARMUP + ROUNDS):
        for name, step in zip(names, steps(), strict=True):
            counted.clear()
            statements.clear()
            with connection.execute_wrapper(count):
                started, started_cpu = time.perf_counter(), time.thread_time()
                response = step()
                elapsed, elapsed_cpu = time.perf_counter() - started, time.thread_time() - started_cpu
            check(name, response)
            if round_ >= WARMUP:
                wall[name].append(elapsed * 1000)
                cpu[name].append(elapsed_cpu * 1000)
                queries[name].append(len(counted))
                sql_ms[name].append(sum(counted) * 1000)
                seen[name] = list(statements)

    profiles = {n: cProfile.Profile() for n in names}
    for _ in range(ROUNDS):
        for name, step in zip(names, steps(), strict=True):
            profiles[name].enable()
            response = step()
            profiles[name].disable()
            check(name, response)
    result = {}
    for name in names:
        parts = _inclusive(pstats.Stats(profiles[name]))
        profiled_total = sum(v[2] for v in pstats.Stats(profiles[name]).stats.values())  # type: ignore[attr-defined]
        result[name] = {
            "queries": statistics.median(queries[name]), "sql_ms": round(statistics.median(sql_ms[name]), 2),
            "ms": round(statistics.median(wall[name]), 2), "cpu_ms": round(statistics.median(cpu[name]), 2),
            "profiled_ms": round(profiled_total * 1000 / ROUNDS, 2),
            "parts_ms": {k: round(v / ROUNDS, 2) for k, v in parts.items() if v},
            "statements": seen.get(name, []),
        }
    print(json.dumps({"requests": result, "rs256_client": rs256}))


if __name__ == "__main__":
    main(sys.argv[1])
