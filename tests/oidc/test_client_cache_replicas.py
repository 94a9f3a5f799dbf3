"""Two real ``ak server`` replicas on one PostgreSQL, no Redis: a client's provider cached by replica B
(core/oidc/client.py provider_for) is dropped on B's next token request after a change made through replica A's
REST API, because the change replaced the configuration stamp in its own transaction (core/system/stamp.py); no
message between the replicas is needed. Loopback only, every request bounded by its timeout."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import need
from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.server.test_cluster_db import DIRECT
from tests.support import postgres
from tests.support.server import create_database, drop_database, start_core

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def replicas(tmp_path):
    need(postgres.machine_postgres_answers(), "PostgreSQL on 127.0.0.1:5432 (user postgres, trust)")
    database = create_database(DIRECT)
    env = {**DIRECT, "AUTHENTIK_POSTGRESQL__NAME": database}
    started = []
    try:
        for name in ("a", "b"):  # one after the other: concurrent first migrations are not serialised
            started.append(start_core(tmp_path / name, env=env, bootstrap_password=ADMIN_PASSWORD,
                                      bootstrap_token=ADMIN_TOKEN))
        yield started
    finally:
        for core in reversed(started):
            core.stop()
        drop_database(DIRECT, database)


def _client(api: httpx.Client) -> tuple[dict, int, str]:
    scopes = api.get("/api/v3/propertymappings/provider/scope/", params={"page_size": 100}).json()["results"]
    flow = api.get("/api/v3/flows/instances/", params={"designation": "authorization"}).json()["results"][0]["pk"]
    client = {"client_id": "replicated", "client_secret": "replicated-secret-" + "s" * 40}
    provider = api.post("/api/v3/providers/oauth2/", json={
        "name": "replicated", "authorization_flow": flow, "client_type": "confidential", **client,
        "property_mappings": [m["pk"] for m in scopes if m["scope_name"] in ("openid", "profile")]})
    assert provider.status_code == 201, provider.text
    app = api.post("/api/v3/core/applications/", json={"name": "Replicated", "slug": "replicated",
                                                       "provider": provider.json()["pk"]})
    assert app.status_code == 201, app.text
    return client, provider.json()["pk"], "replicated"


def _token(core, client: dict) -> httpx.Response:
    body = urlencode({"grant_type": "client_credentials", "scope": "openid profile", **client})
    return httpx.post(core.url + "/application/o/token/", content=body, headers=FORM, timeout=30)


def _refused(answer: httpx.Response) -> bool:
    return answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client"


def test_a_change_through_replica_a_applies_to_replica_bs_next_token_request(replicas):
    a, b = replicas
    with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30) as api:
        client, pk, slug = _client(api)
        for _ in range(3):  # B caches the provider
            assert _token(b, client).status_code == 200
        new = {**client, "client_secret": "rotated-secret-" + "r" * 40}
        assert api.patch(f"/api/v3/providers/oauth2/{pk}/", json={"client_secret": new["client_secret"]}
                         ).status_code == 200
        assert _refused(_token(b, client))
        assert _token(b, new).status_code == 200
        assert _token(b, new).json()["scope"] == "openid profile"
        scopes = api.get("/api/v3/propertymappings/provider/scope/", params={"page_size": 100}).json()["results"]
        openid = [m["pk"] for m in scopes if m["scope_name"] == "openid"]
        assert api.patch(f"/api/v3/providers/oauth2/{pk}/", json={"property_mappings": openid}).status_code == 200
        assert _token(b, new).json()["scope"] == "openid"
        assert api.delete(f"/api/v3/core/applications/{slug}/").status_code == 204
        assert _refused(_token(b, new))
