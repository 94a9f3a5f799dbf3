"""CoreLink.authenticate against a real ``ak server`` (issues 9, 10): the LDAP provider's bind flow (the default
authentication flow, as an operator sets it up through the API) answers a right and a wrong password with one POST
each, and the session the answer names is a core session whose end reaches the outpost as SESSION_END."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from outpost.core_link import CoreLink
from protocols.outpost import AuthResult
from tests.support.server import start_core

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "e2e-authcall-token-0123456789"  # noqa: S105 - test value
PASSWORD = "a long enough password 42"  # noqa: S105 - test value


def _created(response: httpx.Response) -> dict:
    assert response.status_code in (200, 201, 204), response.text
    return response.json() if response.content else {}


def _setup(api: httpx.Client) -> tuple[int, str]:
    """alice, an LDAP provider on the default authentication flow with its application and outpost."""
    user = _created(api.post("/api/v3/core/users/", json={"username": "alice", "name": "Alice",
                                                          "email": "alice@example.com"}))
    _created(api.post(f"/api/v3/core/users/{user['pk']}/set_password/", json={"password": PASSWORD}))
    flows = _created(api.get("/api/v3/flows/instances/", params={"slug": "default-authentication-flow"}))
    flow = flows["results"][0]["pk"]
    provider = _created(api.post("/api/v3/providers/ldap/", json={
        "name": "ldap", "authorization_flow": flow, "base_dn": "DC=ldap,DC=example,DC=com"}))
    _created(api.post("/api/v3/core/applications/", json={"name": "LDAP", "slug": "ldap",
                                                          "provider": provider["pk"]}))
    outpost = _created(api.post("/api/v3/outposts/instances/", json={"name": "ldap", "type": "ldap",
                                                                     "providers": [provider["pk"]]}))
    key = _created(api.get(f"/api/v3/core/tokens/{outpost['token_identifier']}/view_key/"))["key"]
    return provider["pk"], key


async def _bind(url: str, key: str, provider: int, api: httpx.Client) -> None:
    link = CoreLink(url, key, kind="ldap")
    ended: list[str] = []
    link.on_session_end.append(ended.append)
    await link.start()
    try:
        snapshot = await link.wait_ready(30)
        assert [p["pk"] for p in snapshot.providers] == [provider]
        await link.wait_connected(15)

        wrong = await link.authenticate("ldap", provider, "alice", "not it", "192.0.2.10")
        assert wrong.result is AuthResult.INVALID_CREDENTIALS, wrong

        ok = await link.authenticate("ldap", provider, "alice", PASSWORD, "192.0.2.10")
        assert ok.result is AuthResult.OK, ok
        assert ok.user.username == "alice" and ok.session_id and ok.has_search_permission is False

        sessions = await asyncio.to_thread(api.get, "/api/v3/core/authenticated_sessions/")
        rows = [s for s in sessions.json()["results"] if s.get("last_ip") == "192.0.2.10"]
        assert len(rows) == 1, sessions.text
        deleted = await asyncio.to_thread(api.delete, f"/api/v3/core/authenticated_sessions/{rows[0]['uuid']}/")
        assert deleted.status_code == 204, deleted.text
        for _ in range(500):  # a bound on waiting (10 s), not a goal
            if ended:
                break
            await asyncio.sleep(0.02)
        assert ended == [ok.session_id], "SESSION_END names the session the answer named"
    finally:
        await link.close()


def test_core_link_authenticate_against_ak_server(tmp_path):
    core = start_core(tmp_path / "core", bootstrap_token=ADMIN_TOKEN)
    try:
        with httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                          timeout=15.0) as api:
            provider, key = _setup(api)
            asyncio.run(_bind(core.url, key, provider, api))
    finally:
        core.stop()
