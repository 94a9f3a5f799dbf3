"""LDAP outpost end to end: a real ``ak server``, a standalone ``ak outpost ldap`` subprocess and real
clients (ldapwhoami/ldapsearch from ldap-utils, ldap3). The bind goes through the provider's bind flow on
the core (one authenticate call per bind); searches read the users and groups from the core."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pyotp
import pytest

from tests.conftest import need
from tests.support.outpost import OutpostProcess
from tests.support.server import REPO, free_port, start_core

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "ldap-e2e-bootstrap-token-0123456789"  # noqa: S105 - test value
PASSWORD = "Ldap-e2e-password-1"  # noqa: S105 - test value
BASE = "dc=ldap,dc=goauthentik,dc=io"
BULK = 1100

TOTP_SCRIPT = """
import django, sys
django.setup()
from core.accounts.models import User
from core.flows.models import TOTPDevice
TOTPDevice.objects.create(user=User.objects.get(username=sys.argv[1]), key=sys.argv[2], confirmed=True, name="phone")
"""
BULK_SCRIPT = """
import django, sys
django.setup()
from core.accounts.models import User
User.objects.bulk_create([User(username=f"bulk{i:05d}", name=f"Bulk {i}", email=f"bulk{i}@example.com")
                          for i in range(int(sys.argv[1]))], batch_size=500)
"""


def dn(user: str) -> str:
    return f"cn={user},ou=users,{BASE}"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "LDAPTLS_REQCERT": "never"}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    for tool in ("ldapsearch", "ldapwhoami"):
        need(shutil.which(tool) is not None, f"{tool} (ldap-utils)")
    tmp = tmp_path_factory.mktemp("ldap-e2e")
    core = start_core(tmp / "core", bootstrap_token=ADMIN_TOKEN)
    outpost = None
    try:
        api = httpx.Client(base_url=core.url + "/api/v3", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                           timeout=30)
        flows = api.get("/flows/instances/", params={"designation": "authentication"}).json()["results"]
        flow = next(f for f in flows if f["slug"] == "default-authentication-flow")["pk"]
        group = api.post("/core/groups/", json={"name": "ldap-users"}).json()
        users = {}
        for name in ("alice", "bob", "carol", "dave", "erin", "frank", "grace"):
            created = api.post("/core/users/", json={"username": name, "name": name.title(),
                                                     "email": f"{name}@example.com",
                                                     "groups": [] if name == "bob" else [group["pk"]]})
            assert created.status_code == 201, created.text
            users[name] = created.json()
            assert api.post(f"/core/users/{users[name]['pk']}/set_password/",
                            json={"password": PASSWORD}).status_code in (200, 204)
        provider = api.post("/providers/ldap/", json={"name": "ldap", "authorization_flow": flow, "base_dn": BASE,
                                                       "search_full_directory": True})
        assert provider.status_code == 201, provider.text
        app = api.post("/core/applications/", json={"name": "LDAP", "slug": "ldap",
                                                      "provider": provider.json()["pk"]})
        assert app.status_code == 201, app.text
        binding = api.post("/policies/bindings/", json={"target": app.json()["pk"], "group": group["pk"],
                                                        "order": 0})
        assert binding.status_code == 201, binding.text
        created = api.post("/outposts/instances/", json={"name": "ldap-e2e", "type": "ldap",
                                                          "providers": [provider.json()["pk"]]})
        assert created.status_code == 201, created.text
        token = api.get(f"/core/tokens/{created.json()['token_identifier']}/view_key/").json()["key"]
        django_env = {**core.env, "DJANGO_SETTINGS_MODULE": "core.settings"}
        bulk = subprocess.run([sys.executable, "-c", BULK_SCRIPT, str(BULK)], cwd=REPO, env=django_env,
                              capture_output=True, text=True, timeout=300)
        assert bulk.returncode == 0, bulk.stderr
        secret = pyotp.random_base32()
        device = subprocess.run([sys.executable, "-c", TOTP_SCRIPT, "grace", secret], cwd=REPO, env=django_env,
                                capture_output=True, text=True, timeout=300)
        assert device.returncode == 0, device.stderr
        ports = (free_port(), free_port())
        outpost = OutpostProcess(tmp / "outpost", core.url, token, kind="ldap", env={
            "AUTHENTIK_LISTEN__LDAP": f"127.0.0.1:{ports[0]}", "AUTHENTIK_LISTEN__LDAPS": f"127.0.0.1:{ports[1]}"})
        outpost.start()
        outpost.wait_connected()
        yield {"core": core, "outpost": outpost, "ldap": f"ldap://127.0.0.1:{ports[0]}",
               "ldaps": f"ldaps://127.0.0.1:{ports[1]}", "port": ports[0], "api": api, "users": users,
               "totp": secret, "provider": provider.json()["pk"]}
    finally:
        if outpost is not None:
            outpost.stop()
        core.stop()


def test_ldapwhoami_plain_starttls_ldaps(world):
    for args in (("-H", world["ldap"]), ("-ZZ", "-H", world["ldap"]), ("-H", world["ldaps"])):
        got = run("ldapwhoami", "-x", *args, "-D", dn("alice"), "-w", PASSWORD)
        assert got.returncode == 0, (args, got.stderr, world["outpost"].tail())
        assert got.stdout.strip() == f"dn:{dn('alice')}"


def test_wrong_password_49_and_outside_group_50(world):
    got = run("ldapwhoami", "-x", "-H", world["ldap"], "-D", dn("alice"), "-w", "not-it")
    assert got.returncode == 49, got.stderr
    got = run("ldapwhoami", "-x", "-H", world["ldap"], "-D", dn("bob"), "-w", PASSWORD)
    assert got.returncode == 50, got.stderr


def test_ldapsearch_paging_size_limit_and_substrings(world):
    bound = ("-x", "-LLL", "-H", world["ldap"], "-D", dn("alice"), "-w", PASSWORD)
    got = run("ldapsearch", *bound, "-b", f"ou=users,{BASE}", "-E", "pr=50/noprompt", "(objectClass=user)", "cn")
    assert got.returncode == 0, got.stderr
    names = [line[4:] for line in got.stdout.splitlines() if line.startswith("cn: ")]
    assert len([n for n in names if n.startswith("bulk")]) == BULK and "alice" in names
    got = run("ldapsearch", *bound, "-b", BASE, "-z", "7", "(objectClass=user)", "1.1")
    assert got.returncode == 4, got.stderr
    assert got.stdout.count("dn: ") == 7
    got = run("ldapsearch", *bound, "-b", BASE, "(&(objectClass=user)(cn=bulk0100*))", "cn", "mail")
    assert got.returncode == 0, got.stderr
    assert sorted(line for line in got.stdout.splitlines() if line.startswith("cn: ")) == [
        f"cn: bulk0100{i}" for i in range(10)]
    got = run("ldapsearch", *bound, "-b", BASE, "(cn=alice)", "memberOf", "uidNumber")
    assert f"memberOf: cn=ldap-users,ou=groups,{BASE}" in got.stdout, got.stdout


def test_ldap3_with_schema_loader(world):
    import ldap3

    server = ldap3.Server("127.0.0.1", port=world["port"], get_info=ldap3.ALL, connect_timeout=10)
    conn = ldap3.Connection(server, dn("alice"), PASSWORD, auto_bind=True, receive_timeout=30)
    assert "posixAccount" in server.schema.object_classes
    assert conn.search(f"ou=groups,{BASE}", "(cn=ldap-users)", attributes=["member", "gidNumber"])
    assert dn("alice") in conn.entries[0].member.values and dn("bob") not in conn.entries[0].member.values
    assert conn.extend.standard.who_am_i() == f"dn:{dn('alice')}"
    conn.unbind()


def test_garbage_and_truncated_input_then_still_answers(world):
    for garbage in (b"\x16\x03\x01\x02\x00\x01", b"\x30\x84\x7f\xff\xff\xff", os.urandom(300)):
        with socket.create_connection(("127.0.0.1", world["port"]), timeout=20) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    with socket.create_connection(("127.0.0.1", world["port"]), timeout=20) as sock:
        sock.sendall(b"\x30\x0c\x02\x01\x01")  # truncated, then the client goes away
    got = run("ldapwhoami", "-x", "-H", world["ldap"], "-D", dn("alice"), "-w", PASSWORD)
    assert got.returncode == 0, got.stderr


# -- revocation: each takes effect for the next bind or search (direct mode reads the core every time) ----
def bound(world, user: str, password: str = PASSWORD):
    import ldap3

    server = ldap3.Server("127.0.0.1", port=world["port"], connect_timeout=10)
    return ldap3.Connection(server, dn(user), password, auto_bind=True, receive_timeout=30)


def whoami(world, user: str, password: str = PASSWORD) -> int:
    return run("ldapwhoami", "-x", "-H", world["ldap"], "-D", dn(user), "-w", password).returncode


def search_code(conn) -> int:
    conn.search(BASE, "(cn=alice)", attributes=["cn"])
    return conn.result["result"]


def test_session_end_closes_the_bound_connection(world):
    import ldap3

    conn = bound(world, "frank")
    assert search_code(conn) == 0
    api = world["api"]
    sessions = api.get("/core/authenticated_sessions/", params={"user__username": "frank"}).json()["results"]
    assert sessions, "the bind opened a core session"
    for item in sessions:
        assert api.delete(f"/core/authenticated_sessions/{item['uuid']}/").status_code == 204
    deadline = time.monotonic() + 15
    while True:
        try:
            search_code(conn)
        except ldap3.core.exceptions.LDAPException:
            break  # the outpost closed the connection on SESSION_END
        assert time.monotonic() < deadline, world["outpost"].tail()
        time.sleep(0.05)


def test_deactivation(world):
    conn = bound(world, "carol")
    assert search_code(conn) == 0
    api = world["api"]
    assert api.patch(f"/core/users/{world['users']['carol']['pk']}/", json={"is_active": False}).status_code == 200
    assert search_code(conn) == 50
    assert whoami(world, "carol") in (49, 50)


def test_password_change(world):
    conn = bound(world, "dave")
    assert search_code(conn) == 0
    time.sleep(1.1)  # GeneralizedTime has whole seconds: the change must fall after the bind's second
    api = world["api"]
    assert api.post(f"/core/users/{world['users']['dave']['pk']}/set_password/",
                    json={"password": "Another-password-2"}).status_code in (200, 204)
    assert search_code(conn) == 50
    assert whoami(world, "dave") == 49
    assert whoami(world, "dave", "Another-password-2") == 0


def test_group_removal(world):
    assert whoami(world, "erin") == 0
    api = world["api"]
    assert api.patch(f"/core/users/{world['users']['erin']['pk']}/", json={"groups": []}).status_code == 200
    assert whoami(world, "erin") == 50


def test_mfa_password_semicolon_code(world):
    assert whoami(world, "grace") == 49  # the password alone: the flow asks for a code
    code = pyotp.TOTP(world["totp"]).now()
    assert whoami(world, "grace", f"{PASSWORD};{code}") == 0


def test_metrics_and_log_lines(world):
    outpost = world["outpost"]
    text = httpx.get(f"http://127.0.0.1:{outpost.metrics_port}/metrics", timeout=10).text
    assert 'gatehouse_outpost_ldap_operations_total{code="49",type="bind"}' in text
    assert 'authentik_outpost_ldap_requests_count{app="ldap",outpost_name="ldap-e2e",type="search"}' in text
    log = outpost.log.read_text()
    assert '"event": "ldap bind"' in log and '"code": 49' in log
    assert PASSWORD not in log  # never the password


def test_unbind_runs_the_unbind_flow_on_the_binds_session(world):
    """Reference §3.2: with an unbind flow (the provider's invalidation_flow) the core runs it on the session the
    bind opened, so an unbind ends it (a logout event, SESSION_END); without one the session stays."""
    api, provider = world["api"], world["provider"]
    ursula = api.post("/core/users/", json={"username": "ursula", "name": "Ursula", "email": "ursula@example.com",
                                           "groups": world["users"]["alice"]["groups"]}).json()
    assert api.post(f"/core/users/{ursula['pk']}/set_password/", json={"password": PASSWORD}).status_code in (200, 204)

    def sessions() -> int:
        return api.get("/core/authenticated_sessions/", params={"user__username": "ursula"}).json()["pagination"]["count"]

    flow = api.get("/flows/instances/", params={"slug": "default-invalidation-flow"}).json()["results"][0]["pk"]
    assert whoami(world, "ursula") == 0  # no unbind flow yet: the bind's session stays
    assert sessions() == 1
    patched = api.patch(f"/providers/ldap/{provider}/", json={"invalidation_flow": flow})
    assert patched.status_code == 200 and patched.json()["invalidation_flow"] == flow, patched.text
    def logouts() -> int:
        return len(api.get("/events/events/", params={"action": "logout", "username": "ursula"}).json()["results"])

    try:
        deadline = time.monotonic() + 20
        while not logouts():  # the outpost learns the unbind flow on its next refresh (the core announces the change)
            assert time.monotonic() < deadline, world["core"].tail(30)
            assert whoami(world, "ursula") == 0
            time.sleep(0.3)
        time.sleep(1.0)  # the unbinds on their way land
        before, ended = sessions(), logouts()
        assert whoami(world, "ursula") == 0  # one more bind and unbind: its session opens and ends
        while logouts() == ended or sessions() != before:
            assert time.monotonic() < deadline + 10, world["core"].tail(30)
            time.sleep(0.2)
    finally:
        assert api.patch(f"/providers/ldap/{provider}/", json={"invalidation_flow": None}).status_code == 200


def presented_common_name(port: int, server_name: str | None = None) -> str:
    import ssl

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as tls:
        cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_the_providers_certificate_is_presented(world):
    """A provider's ``certificate`` (a key pair the core generated) is what LDAPS and StartTLS present, once the
    outpost has fetched it (only the providers' outpost may read the pair's private key); unset, the default."""
    api, provider, outpost = world["api"], world["provider"], world["outpost"]
    ldaps_port = int(world["ldaps"].rsplit(":", 1)[1])
    assert presented_common_name(ldaps_port) != "ldap.example.test"
    pair = api.post("/crypto/certificatekeypairs/generate/", json={
        "common_name": "ldap.example.test", "subject_alt_name": "ldap.example.test", "validity_days": 30})
    assert pair.status_code == 200, pair.text
    token = {"Authorization": f"Bearer {outpost.token}"}
    key_path = f"/crypto/certificatekeypairs/{pair.json()['pk']}/view_private_key/"
    assert api.get(key_path, headers=token).status_code == 404  # not one of its providers' pairs yet
    assert api.patch(f"/providers/ldap/{provider}/", json={"certificate": pair.json()["pk"]}).status_code == 200
    try:
        assert api.get(key_path, headers=token).status_code == 200
        until(lambda: presented_common_name(ldaps_port) == "ldap.example.test", "the provider's certificate",
              outpost)
        got = run("ldapwhoami", "-x", "-ZZ", "-H", world["ldap"], "-D", dn("alice"), "-w", PASSWORD)
        assert got.returncode == 0, got.stderr
    finally:
        assert api.patch(f"/providers/ldap/{provider}/", json={"certificate": None}).status_code == 200
    until(lambda: presented_common_name(ldaps_port) != "ldap.example.test", "the default certificate again", outpost)


HAPROXY_CONFIG = """
global
    maxconn 64
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend ldap
    bind 127.0.0.1:{front}
    default_backend outpost
frontend ldaps
    bind 127.0.0.1:{front_tls}
    default_backend outpost_tls
backend outpost
    server ldap 127.0.0.1:{ldap} send-proxy-v2 source 127.0.0.3
backend outpost_tls
    server ldaps 127.0.0.1:{ldaps} send-proxy source 127.0.0.3
"""


def test_haproxy_in_front_with_the_proxy_protocol(world, tmp_path):
    """A real HAProxy in TCP mode in front of the outpost, sending PROXY v2 (plain) and v1 (LDAPS) from
    127.0.0.3: the outpost trusts it (127.0.0.0/8 is in the default AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS) and
    logs the client HAProxy names, not HAProxy's own address."""
    need(shutil.which("haproxy") is not None, "haproxy")
    outpost = world["outpost"]
    ldaps_port = int(world["ldaps"].rsplit(":", 1)[1])
    front, front_tls = free_port(), free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(front=front, front_tls=front_tls, ldap=world["port"], ldaps=ldaps_port))
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", front)) == 0:
                    break
            assert haproxy.poll() is None and time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.1)
        before = outpost.log.read_text()
        for url in (f"ldap://127.0.0.1:{front}", f"ldaps://127.0.0.1:{front_tls}"):
            got = run("ldapwhoami", "-x", "-H", url, "-D", dn("alice"), "-w", PASSWORD)
            assert got.returncode == 0, (url, got.stderr, outpost.tail())
        deadline = time.monotonic() + 5  # the operation lines are written in batches, up to 0.2 s later
        while True:
            lines = outpost.log.read_text()[len(before):]
            binds = [line for line in lines.splitlines() if '"event": "ldap bind"' in line]
            if len(binds) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(binds) == 2 and all('"client": "127.0.0.1"' in line for line in binds), binds
        assert "127.0.0.3" not in lines
    finally:
        haproxy.terminate()
        haproxy.wait(10)


def until(predicate, what: str, outpost, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s\n{outpost.tail()}"
        time.sleep(0.05)


def test_cached_search_mode_follows_changes(world):
    """Last in this module: it switches the provider to search_mode=cached and deactivates alice."""
    api, outpost = world["api"], world["outpost"]
    assert api.patch(f"/providers/ldap/{world['provider']}/", json={"search_mode": "cached"}).status_code == 200
    conn = bound(world, "alice")

    def finds(name: str) -> bool:
        conn.search(BASE, f"(cn={name})", attributes=["cn"])
        return bool(conn.entries)

    until(lambda: finds("alice") and "ldap directory cached" in outpost.log.read_text(),
          "the outpost in cached mode", outpost)
    created = api.post("/core/users/", json={"username": "henry", "name": "Henry", "email": "h@example.com"})
    assert created.status_code == 201, created.text
    until(lambda: finds("henry"), "a new user seen by the cached directory", outpost)
    assert api.patch(f"/core/users/{world['users']['alice']['pk']}/", json={"is_active": False}).status_code == 200
    until(lambda: search_code(conn) == 50, "a deactivation seen by the cached directory", outpost)


def test_cached_bind_mode_follows_a_password_change(world):
    api, outpost = world["api"], world["outpost"]
    dave, password = world["users"]["dave"]["pk"], "Another-password-2"  # noqa: S105 - set by test_password_change
    assert api.patch(f"/providers/ldap/{world['provider']}/", json={"bind_mode": "cached"}).status_code == 200
    until(lambda: whoami(world, "dave", password) == 0 and '"cached": true' in outpost.log.read_text(),
          "a bind answered from the bind cache", outpost)
    assert api.post(f"/core/users/{dave}/set_password/", json={"password": "Third-password-3"}).status_code == 204
    until(lambda: whoami(world, "dave", password) == 49, "the old password refused after the change", outpost)
    assert whoami(world, "dave", "Third-password-3") == 0


def test_cached_bind_mode_session_end_and_group_removal(world):
    """Runs after the switch to bind_mode=cached above."""
    import ldap3

    api, outpost = world["api"], world["outpost"]
    assert whoami(world, "frank") == 0
    held = bound(world, "frank")  # answered from the bind cache, registered under that bind's core session
    assert search_code(held) == 0
    for item in api.get("/core/authenticated_sessions/", params={"user__username": "frank"}).json()["results"]:
        assert api.delete(f"/core/authenticated_sessions/{item['uuid']}/").status_code == 204

    def closed() -> bool:
        try:
            search_code(held)
        except ldap3.core.exceptions.LDAPException:
            return True
        return False

    until(closed, "the cached bind's connection closed on SESSION_END", outpost)
    assert whoami(world, "frank") == 0
    assert api.patch(f"/core/users/{world['users']['frank']['pk']}/", json={"groups": []}).status_code == 200
    until(lambda: whoami(world, "frank") == 50, "a group removal refusing the next cached bind", outpost)


def test_readme_blueprint_creates_provider_application_and_outpost(world):
    """The blueprint README "LDAP outpost" shows, applied as written (but for the application's slug)."""
    text = (REPO / "README.md").read_text()
    start = text.index("# blueprint: ldap outpost")
    path = world["core"].data_dir / "ldap-blueprint.yaml"
    blueprint = text[start:text.index("```", start)]
    assert "slug: ldap\n" in blueprint
    path.write_text(blueprint.replace("slug: ldap\n", "slug: ldap-blueprint\n"))  # this module has an app "ldap"
    applied = subprocess.run([sys.executable, "-m", "core.cli", "apply_blueprint", str(path)], cwd=REPO,
                             env=world["core"].env, capture_output=True, text=True, timeout=180)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    api = world["api"]
    [provider] = api.get("/providers/ldap/", params={"name": "LDAP"}).json()["results"]
    assert provider["base_dn"] == "dc=ldap,dc=example,dc=com" and provider["require_tls"] is True
    outposts = [o for o in api.get("/outposts/instances/").json()["results"] if o["name"] == "ldap"]
    assert len(outposts) == 1 and outposts[0]["type"] == "ldap" and outposts[0]["providers"] == [provider["pk"]]
    [app] = api.get("/core/applications/", params={"slug": "ldap-blueprint"}).json()["results"]
    assert app["provider"] == provider["pk"]

