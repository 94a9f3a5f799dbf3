"""LDAP inside ``ak server``: an LDAP provider bound to the embedded outpost is answered on the core's
AUTHENTIK_LISTEN__LDAP / __LDAPS once bound (nothing listens before), by the real ldap-utils clients."""

from __future__ import annotations

import functools
import shutil
import socket
import time

import httpx
import pytest

from tests.conftest import need
from tests.outposts.test_ldap_e2e import run
from tests.support.server import api_call, free_port, start_core

pytestmark = pytest.mark.e2e

TOKEN = "ldap-embedded-bootstrap-" + "l" * 30  # noqa: S105 - test value
PASSWORD = "Correct-Horse-ldap-embedded-7!"  # noqa: S105 - test value
BASE = "dc=embedded,dc=example,dc=test"
DN = f"cn=erin,ou=users,{BASE}"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_outpost_serves_ldap(tmp_path):
    for tool in ("ldapsearch", "ldapwhoami"):
        need(shutil.which(tool) is not None, f"{tool} (ldap-utils)")
    ldap_port, ldaps_port = free_port(), free_port()
    core = start_core(tmp_path / "core", bootstrap_token=TOKEN, env={
        "AUTHENTIK_LISTEN__LDAP": f"127.0.0.1:{ldap_port}", "AUTHENTIK_LISTEN__LDAPS": f"127.0.0.1:{ldaps_port}"})
    try:
        with httpx.Client(base_url=core.url + "/api/v3", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=30) as api:
            call = functools.partial(api_call, api)

            user = call("POST", "/core/users/", json={"username": "erin", "name": "Erin", "email": "e@example.test"})
            call("POST", f"/core/users/{user['pk']}/set_password/", json={"password": PASSWORD})
            flow = call("GET", "/flows/instances/", params={"slug": "default-authentication-flow"})["results"][0]
            provider = call("POST", "/providers/ldap/", json={
                "name": "embedded-ldap", "authorization_flow": flow["pk"], "base_dn": BASE,
                "search_full_directory": True})
            call("POST", "/core/applications/", json={"name": "Embedded LDAP", "slug": "embedded-ldap",
                                                      "provider": provider["pk"]})
            assert not listening(ldap_port)  # nothing listens before an LDAP provider is bound
            embedded = call("GET", "/outposts/instances/",
                            params={"managed": "goauthentik.io/outposts/embedded"})["results"][0]
            key = call("GET", f"/core/tokens/{embedded['token_identifier']}/view_key/")["key"]
            as_outpost = {"Authorization": f"Bearer {key}"}
            # the embedded outpost reads the directory only while it serves an LDAP provider
            assert api.get("/core/users/", headers=as_outpost).status_code == 403
            call("PATCH", f"/outposts/instances/{embedded['pk']}/",
                 json={"providers": [*embedded["providers"], provider["pk"]]})
            assert api.get("/core/users/", headers=as_outpost).status_code == 200
            deadline = time.monotonic() + 30
            while not listening(ldap_port):
                assert time.monotonic() < deadline, f"no LDAP listener in ak server:\n{core.tail()}"
                time.sleep(0.2)
        for args in (("-H", f"ldap://127.0.0.1:{ldap_port}"), ("-ZZ", "-H", f"ldap://127.0.0.1:{ldap_port}"),
                     ("-H", f"ldaps://127.0.0.1:{ldaps_port}")):
            got = run("ldapwhoami", "-x", *args, "-D", DN, "-w", PASSWORD)
            assert got.returncode == 0, (args, got.stderr, core.tail())
            assert got.stdout.strip() == f"dn:{DN}"
        got = run("ldapwhoami", "-x", "-H", f"ldap://127.0.0.1:{ldap_port}", "-D", DN, "-w", "not-it")
        assert got.returncode == 49, got.stderr
        got = run("ldapsearch", "-x", "-H", f"ldap://127.0.0.1:{ldap_port}", "-D", DN, "-w", PASSWORD,
                  "-b", BASE, "(cn=erin)", "mail")
        assert got.returncode == 0 and "mail: e@example.test" in got.stdout, got.stdout + got.stderr
    finally:
        core.stop()
