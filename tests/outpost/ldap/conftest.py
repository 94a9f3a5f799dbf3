"""An LDAP outpost server on 127.0.0.1 with a fake core link (no core, no database): the handlers' rules
and the socket glue, driven by real clients (ldapsearch, ldapwhoami, ldap3) and raw bytes."""

from __future__ import annotations

import asyncio
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from outpost.config import Listen
from outpost.core_link import LinkError, Snapshot
from outpost.ldap import tls
from outpost.ldap.handlers import FailedBinds, Handlers
from outpost.ldap.server import LDAPServer
from protocols.outpost import AuthAnswer, AuthGroup, AuthResult, AuthUser
from tests.conftest import need

BASE = "DC=ldap,DC=goauthentik,DC=io"
PASSWORD = "correct horse"  # noqa: S105 - test value


def provider(**extra) -> dict:
    return {"pk": 1, "name": "ldap", "base_dn": BASE, "bind_flow_slug": "bind", "application_slug": "app",
            "uid_start_number": 2000, "gid_start_number": 4000, "search_mode": "direct", "bind_mode": "direct",
            "mfa_support": True, "require_tls": False, **extra}


def user(pk: int, username: str, **extra) -> dict:
    return {"pk": pk, "username": username, "name": username.title(), "is_active": True, "is_superuser": False,
            "email": f"{username}@example.com", "uid": f"uid-{pk}", "attributes": {},
            "groups_obj": [{"pk": "g1", "name": "staff"}] if pk % 2 else [], **extra}


class FakeLink:
    """What Handlers use of CoreLink: the snapshot, authenticate() and _all_pages()."""

    def __init__(self, users: list[dict], groups: list[dict], providers=None):
        self.snapshot = Snapshot(outpost={"pk": "o1", "name": "ldap"}, providers=tuple(providers or [provider()]),
                                 generation=1)
        self.users, self.groups = users, groups
        self.denied: set[str] = set()
        self.searchers: set[str] = {"admin"}
        self.calls: list[tuple] = []
        self.unbinds: list[tuple] = []
        self.on_session_end: list = []
        self.on_refresh: list = []
        self.paths: list[str] = []
        self.page_sizes: list[int] = []
        self.hold: asyncio.Event | None = None  # set: directory reads wait for it (a slow refetch)

    async def authenticate(self, kind, provider_pk, username, password, remote_ip):
        self.calls.append((kind, provider_pk, username, remote_ip))
        found = next((u for u in self.users if u["username"] == username), None)
        if found is None or password != PASSWORD:
            return AuthAnswer(AuthResult.INVALID_CREDENTIALS, "wrong password")
        if username in self.denied:
            return AuthAnswer(AuthResult.ACCESS_DENIED, "not in the application's group")
        auth_user = AuthUser(pk=found["pk"], uid=found["uid"], username=username, name=found["name"],
                             email=found["email"], is_active=True, is_superuser=False,
                             groups=tuple(AuthGroup(g["pk"], g["name"]) for g in found["groups_obj"]))
        return AuthAnswer(AuthResult.OK, "", auth_user, f"session-{username}",
                          has_search_permission=username in self.searchers)

    async def ldap_unbind(self, provider_pk, session_id, remote_ip):
        self.unbinds.append((provider_pk, session_id, remote_ip))
        return True

    def changed(self) -> None:
        """What TRIGGER_UPDATE does: the link refreshes and calls its on_refresh callbacks."""
        for callback in self.on_refresh:
            callback(self.snapshot)

    async def _all_pages(self, path, page_size=100):
        await asyncio.sleep(0)
        self.page_sizes.append(page_size)
        if self.hold is not None:
            await self.hold.wait()
        self.paths.append(path)
        if "users" not in path:
            return list(self.groups)
        search = parse_qs(urlsplit(path).query).get("search", [""])[0].lower()
        return [u for u in self.users if search in (u["username"] + u["name"] + u["email"]).lower()]

    async def _pages(self, path, page_size=100):
        items = await self._all_pages(path, page_size)
        for start in range(0, len(items), page_size):
            yield items[start:start + page_size]
        if not items:
            yield []

    async def _get_json(self, path, params=None):
        pk = int(path.rstrip("/").rsplit("/", 1)[1])
        found = next((u for u in self.users if u["pk"] == pk), None)
        if found is None:
            raise LinkError(f"GET {path} answered HTTP 404")
        return found


def directory_data(count: int = 30) -> tuple[list[dict], list[dict]]:
    users = [user(1, "admin"), user(2, "alice"), user(3, "bob")] + [user(i, f"user{i:04d}") for i in range(4, count + 1)]
    groups = [{"pk": "g1", "num_pk": 1, "name": "staff", "is_superuser": False, "parent": None,
               "users": [u["pk"] for u in users if u["pk"] % 2], "attributes": {}, "children": []}]
    return users, groups


@pytest.fixture
async def ldap_server():
    servers = []

    async def make(count: int = 30, *, idle_timeout: float = 30.0, limiter=None, trusted_proxies=(),
                   **provider_extra):
        users, groups = directory_data(count)
        link = FakeLink(users, groups, [provider(**provider_extra)])
        handlers = Handlers(link, limiter=limiter or FailedBinds(), penalty=0.05)
        server = LDAPServer(handlers, tls.server_context(), idle_timeout=idle_timeout,
                            trusted_proxies=trusted_proxies)
        await server.start(Listen("127.0.0.1", 0), Listen("127.0.0.1", 0))
        servers.append(server)
        server.link = link
        return server

    yield make
    for server in servers:
        await server.close()


def need_tool(name: str) -> None:
    need(shutil.which(name) is not None, f"{name} (ldap-utils)")


async def run(*args: str, env: dict | None = None, timeout: float = 60) -> tuple[int, str, str]:
    import os
    full = {**os.environ, "LDAPTLS_REQCERT": "never", **(env or {})}
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=full)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
