"""Issue 10's done-when with real clients: a real ``ak server`` and a standalone ``ak outpost radius``
(subprocesses), radtest/radclient (freeradius-utils) and pyrad's client.

Providers bound to the one outpost (client_networks decide which secret a source address gets):
  wide    127.0.0.0/16   (pyrad clients bound to 127.0.0.2, 127.0.0.4)
  narrow  127.0.0.1/32   (radtest and radclient, which send from 127.0.0.1: the longest prefix wins)
  legacy  127.0.0.3/32   require_message_authenticator off (an old NAS)
127.1.0.1 is in none of them: an unknown client. Each provider's application is bound to the group
``radius-users``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from pyrad.client import Client, Timeout
from pyrad.packet import AccessAccept, AccessReject, AccessRequest

from protocols.radius.codec import Code, dictionary, encode_request
from tests.conftest import need
from tests.support.outpost import OutpostProcess
from tests.support.server import start_core

pytestmark = pytest.mark.e2e

TOKEN = "radius-e2e-bootstrap-token-" + "r" * 30  # noqa: S105 - test value
PASSWORD = "Correct-Horse-radius-7!"  # noqa: S105 - test value
WIDE, NARROW, LEGACY = b"wide-secret-1", b"narrow-secret-2", b"legacy-secret-3"
GROUP = "radius-users"
WAIT = 30.0  # bound on waiting for the outpost to see a change (not a performance goal)
NO_ANSWER = 2.5  # seconds a client waits before concluding "no answer"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class World:
    def __init__(self, core, outpost: OutpostProcess, auth_port: int, acct_port: int, api: httpx.Client):
        self.core, self.outpost, self.auth_port, self.acct_port, self.api = core, outpost, auth_port, acct_port, api
        self.users: dict[str, dict] = {}
        self.network_passwords: dict[str, str] = {}
        self.providers: dict[str, int] = {}
        self.group_pk = ""
        self.totp: pyotp.TOTP | None = None
        self.last_step = -1

    def code(self) -> str:
        """A TOTP code of a time step not used before (the core refuses a replayed step; it accepts one step
        of drift either way)."""
        while True:
            now = int(time.time() // 30)
            step = max(now, self.last_step + 1)
            if step <= now + 1:
                self.last_step = step
                return self.totp.at(step * 30)
            time.sleep(1)

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.api.request(method, "/api/v3" + path, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response.json() if response.content else {}

    # -- clients ------------------------------------------------------------------------------------------
    def pyrad(self, secret: bytes, source: str = "127.0.0.2", timeout: float = NO_ANSWER) -> Client:
        client = Client(server="127.0.0.1", authport=self.auth_port, acctport=self.acct_port, secret=secret,
                        dict=dictionary(), retries=1, timeout=timeout, enforce_ma=True)
        client.bind((source, 0))
        return client

    def pap(self, user: str, password: str, *, secret: bytes = WIDE, source: str = "127.0.0.2",
            ma: bool = True) -> int | None:
        """The reply code, or None for no answer (pyrad verifies the reply and its Message-Authenticator)."""
        reply = self.pap_reply(user, password, secret=secret, source=source, ma=ma)
        return None if reply is None else reply.code

    def pap_reply(self, user: str, password: str, *, secret: bytes = WIDE, source: str = "127.0.0.2",
                  ma: bool = True):
        client = self.pyrad(secret, source)
        # pyrad's client adds a Message-Authenticator unless told not to
        request = client.CreateAuthPacket(code=AccessRequest, User_Name=user, NAS_Identifier="e2e",
                                          message_authenticator=ma)
        request["User-Password"] = request.PwCrypt(password)
        try:
            return client.SendPacket(request)
        except Timeout:
            return None

    def raw(self, data: bytes, source: str = "127.0.0.2", port: int | None = None) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((source, 0))
            sock.settimeout(NO_ANSWER)
            sock.sendto(data, ("127.0.0.1", port or self.auth_port))
            try:
                return sock.recv(4096)
            except TimeoutError:
                return None

    def radclient(self, attributes: str, secret: bytes = NARROW, kind: str = "auth") -> str:
        need(shutil.which("radclient") is not None, "radclient (freeradius-utils)")
        port = self.auth_port if kind in ("auth", "status") else self.acct_port
        done = subprocess.run(["radclient", "-r", "1", "-t", "3", f"127.0.0.1:{port}", kind, secret.decode()],
                              input=attributes + "\n", capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    def radtest(self, user: str, password: str, secret: bytes = NARROW) -> str:
        return self.radtest_method("pap", user, password, secret)

    def radtest_method(self, method: str, user: str, password: str, secret: bytes = NARROW) -> str:
        need(shutil.which("radtest") is not None, "radtest (freeradius-utils)")
        done = subprocess.run(["radtest", "-t", method, user, password, f"127.0.0.1:{self.auth_port}", "0",
                               secret.decode()], capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    def until(self, predicate, what: str, seconds: float = WAIT):
        deadline = time.monotonic() + seconds
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {seconds} s\n{self.outpost.tail()}")
            time.sleep(0.2)


def _flow_pk(api: httpx.Client, slug: str) -> str:
    found = api.get("/api/v3/flows/instances/", params={"slug": slug}).json()["results"]
    assert found, f"no flow {slug}"
    return found[0]["pk"]


def _user(world: World, username: str) -> dict:
    user = world.call("POST", "/core/users/", json={"username": username, "name": username.title(),
                                                    "email": f"{username}@example.test",
                                                    "groups": [world.group_pk]})
    world.call("POST", f"/core/users/{user['pk']}/set_password/", json={"password": PASSWORD})
    world.users[username] = user
    return user


def _enrol_totp(world: World, username: str) -> pyotp.TOTP:
    """``username`` enrols TOTP through the flows, as a person would."""
    def executor(client, slug, answer=None):
        url = f"/api/v3/flows/executor/{slug}/?query="
        response = client.get(url) if answer is None else client.post(url, json=answer)
        if response.status_code == 302:  # the executor's answer to a POST: GET the next challenge
            response = client.get(url)
        assert response.status_code == 200, response.text[:300]
        return response.json()

    with httpx.Client(base_url=world.core.url, timeout=15.0) as client:
        slug = "default-authentication-flow"
        executor(client, slug)
        executor(client, slug, {"component": "ak-stage-identification", "uid_field": username})
        done = executor(client, slug, {"component": "ak-stage-password", "password": PASSWORD})
        assert done["component"] == "xak-flow-redirect", done
        setup = executor(client, "default-authenticator-totp-setup")
        world.totp = pyotp.TOTP(parse_qs(urlsplit(setup["config_url"]).query)["secret"][0])
        done = executor(client, "default-authenticator-totp-setup",
                        {"component": "ak-stage-authenticator-totp", "code": world.code()})
        assert done["component"] == "xak-flow-redirect", done
    return world.totp


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("radius")
    core = start_core(workdir / "core", bootstrap_token=TOKEN)
    outpost = None
    api = httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0)
    try:
        auth_port, acct_port = free_udp_port(), free_udp_port()
        world = World(core, None, auth_port, acct_port, api)  # type: ignore[arg-type]
        world.group_pk = world.call("POST", "/core/groups/", json={"name": GROUP})["pk"]
        for name in ("alice", "bob", "carol", "dave", "mfa-user"):
            _user(world, name)
        flow = _flow_pk(api, "default-authentication-flow")
        providers = []
        for name, networks, secret, extra in (("wide", "127.0.0.0/16", WIDE, {}),
                                              ("narrow", "127.0.0.1/32", NARROW, {}),
                                              ("legacy", "127.0.0.3/32", LEGACY,
                                               {"require_message_authenticator": False})):
            provider = world.call("POST", "/providers/radius/", json={
                "name": f"radius-{name}", "authorization_flow": flow, "client_networks": networks,
                "shared_secret": secret.decode(), "mfa_support": True, **extra})
            app = world.call("POST", "/core/applications/", json={"name": f"VPN {name}", "slug": f"vpn-{name}",
                                                                  "provider": provider["pk"]})
            world.call("POST", "/policies/bindings/", json={"target": app["pk"], "group": world.group_pk,
                                                            "order": 0})
            providers.append(provider["pk"])
            world.providers[name] = provider["pk"]
        created = world.call("POST", "/outposts/instances/", json={"name": "radius", "type": "radius",
                                                                   "providers": providers})
        key = world.call("GET", f"/core/tokens/{created['token_identifier']}/view_key/")["key"]
        outpost = OutpostProcess(workdir / "outpost", core.url, key, kind="radius", env={
            "AUTHENTIK_LISTEN__RADIUS": f"127.0.0.1:{auth_port}",
            "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING": f"127.0.0.1:{acct_port}"})
        world.outpost = outpost
        outpost.start()
        outpost.wait_connected()
        world.totp = _enrol_totp(world, "mfa-user")
        yield world
    finally:
        if outpost is not None:
            outpost.stop()
        api.close()
        core.stop()


def status_server(secret: bytes) -> bytes:
    return encode_request(Code.STATUS_SERVER, secret, 42, os.urandom(16), [("NAS-Identifier", "probe")])


# -- no core call needed ------------------------------------------------------------------------------------

def test_status_server_pyrad_and_radclient(world):
    reply = world.raw(status_server(WIDE))
    assert reply is not None and reply[0] == Code.ACCESS_ACCEPT
    acct = world.raw(status_server(WIDE), port=world.acct_port)
    assert acct is not None and acct[0] == Code.ACCOUNTING_RESPONSE
    assert "Received Access-Accept" in world.radclient("Message-Authenticator = 0x00", kind="status")


def test_longest_prefix_secret_choice(world):
    # 127.0.0.1 is in wide (/16) and narrow (/32): narrow's secret answers, wide's is dropped
    assert world.raw(status_server(NARROW), source="127.0.0.1") is not None
    assert world.raw(status_server(WIDE), source="127.0.0.1") is None
    assert world.raw(status_server(WIDE), source="127.0.0.2") is not None


def dropped(world, reason: str) -> float:
    """``gatehouse_outpost_radius_dropped_total{reason=...}`` from the outpost's metrics listener."""
    text = httpx.get(f"http://127.0.0.1:{world.outpost.metrics_port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'gatehouse_outpost_radius_dropped_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_unknown_client_gets_no_answer_and_is_counted(world):
    before = dropped(world, "unknown_client")
    assert world.raw(status_server(WIDE), source="127.1.0.1") is None
    assert world.pap("alice", PASSWORD, source="127.1.0.1") is None
    assert dropped(world, "unknown_client") >= before + 2  # pyrad may retransmit once


def test_wrong_shared_secret_never_accepted(world):
    assert world.pap("alice", PASSWORD, secret=b"not-the-secret") is None
    out = world.radclient(f"User-Name = alice, User-Password = {PASSWORD}, Message-Authenticator = 0x00",
                          secret=b"not-the-secret")
    assert "Access-Accept" not in out


def test_missing_message_authenticator_dropped_unless_opted_out(world):
    assert world.pap("alice", PASSWORD, ma=False) is None
    out = world.radclient(f"User-Name = alice, User-Password = {PASSWORD}")
    assert "Received" not in out


def test_bad_message_authenticator_dropped(world):
    data = bytearray(encode_request(Code.ACCESS_REQUEST, WIDE, 9, os.urandom(16), [("User-Name", "alice")],
                                    password=PASSWORD))
    at = data.index(bytes([80, 18])) + 2
    data[at:at + 16] = os.urandom(16)
    assert world.raw(bytes(data)) is None


def test_garbage_then_still_answers(world):
    for junk in (b"", b"\x01" * 3, os.urandom(20), os.urandom(700), b"\x01\x07\x10\x01" + os.urandom(60),
                 bytes([1, 1, 0, 30]) + os.urandom(16) + bytes([1, 40]) + b"x" * 8):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            sock.sendto(junk, ("127.0.0.1", world.auth_port))
    assert world.pap("alice", PASSWORD) == AccessAccept


# -- through the core ---------------------------------------------------------------------------------------

def test_pap_accept_and_reject_pyrad(world):
    assert world.pap("alice", PASSWORD) == AccessAccept
    assert world.pap("alice", "wrong-password") == AccessReject
    assert world.pap("nobody-here", PASSWORD) == AccessReject


def test_pap_radtest_and_radclient(world):
    assert "Received Access-Accept" in world.radtest("alice", PASSWORD)
    assert "Received Access-Reject" in world.radtest("alice", "wrong-password")
    out = world.radclient(f"User-Name = alice, User-Password = {PASSWORD}, Message-Authenticator = 0x00")
    assert "Received Access-Accept" in out


def test_message_authenticator_opt_out_answers_old_devices(world):
    assert world.pap("alice", PASSWORD, secret=LEGACY, source="127.0.0.3", ma=False) == AccessAccept
    assert world.pap("alice", PASSWORD, secret=b"guess", source="127.0.0.3", ma=False) != AccessAccept


def test_mfa_password_and_code(world):
    assert world.pap("mfa-user", PASSWORD) == AccessReject  # the code is required
    good = world.code()
    assert world.pap("mfa-user", f"{PASSWORD};{'000000' if good != '000000' else '111111'}") == AccessReject
    assert world.pap("mfa-user", f"{PASSWORD};{good}") == AccessAccept


def network_password(world, username: str) -> str:
    """``username``'s network password (a token of intent radius, made by the admin on first use): its key is
    in the answer that created it only (view_key refuses it)."""
    if username not in world.network_passwords:
        identifier = f"{username}-radius"
        created = world.call("POST", "/core/tokens/", json={"identifier": identifier, "intent": "radius",
                                                            "user": world.users[username]["pk"]})
        assert world.api.get(f"/api/v3/core/tokens/{identifier}/view_key/").status_code == 403
        world.network_passwords[username] = created["key"]
    return world.network_passwords[username]


def test_chap_without_a_network_password_is_rejected_and_logged(world):
    """An app password is for PAP and the API: CHAP does not try it, and the outpost log says what to do."""
    app = world.call("POST", "/core/tokens/", json={"identifier": "carol-app", "intent": "app_password",
                                                    "user": world.users["carol"]["pk"]})
    assert "Received Access-Reject" in world.radtest_method("chap", "carol", app["key"])
    world.until(lambda: "no network password; create one" in world.outpost.log.read_text(errors="replace"),
                "the reject's reason in the outpost log")
    assert app["key"] not in world.outpost.log.read_text(errors="replace")


def test_chap_with_a_network_password_radtest(world):
    key = network_password(world, "alice")
    assert "Received Access-Accept" in world.radtest_method("chap", "alice", key)
    assert "Received Access-Reject" in world.radtest_method("chap", "alice", key + "x")
    assert "Received Access-Reject" in world.radtest_method("chap", "alice", PASSWORD)  # not the account's


def test_mschap_with_a_network_password_radtest(world):
    key = network_password(world, "alice")
    assert "Received Access-Accept" in world.radtest_method("mschap", "alice", key)
    assert "Received Access-Reject" in world.radtest_method("mschap", "alice", key + "x")


def test_mschapv2_with_a_network_password_pyrad(world):
    from protocols.radius import mschap

    key = network_password(world, "alice")
    client = world.pyrad(WIDE)
    challenge, peer = os.urandom(16), os.urandom(16)
    nt = mschap.generate_nt_response(challenge, peer, "alice", key)
    request = client.CreateAuthPacket(code=AccessRequest, User_Name="alice")
    request.AddAttribute("MS-CHAP-Challenge", challenge)
    request.AddAttribute("MS-CHAP2-Response", bytes([7, 0]) + peer + b"\x00" * 8 + nt)
    reply = client.SendPacket(request)
    assert reply.code == AccessAccept
    assert reply["MS-CHAP2-Success"] == [bytes([7]) + mschap.authenticator_response(
        key, nt, peer, challenge, "alice").encode()]
    reply.secret, reply.authenticator = WIDE, request.authenticator
    assert reply["MS-MPPE-Send-Key"] == [mschap.mppe_keys(key, nt)[0]]


def test_vlan_by_group_in_the_accept(world):
    vlan = world.call("POST", "/core/groups/", json={"name": "vlan-42", "attributes": {
        "radius_reply_attributes": [["Tunnel-Type:1", "VLAN"], ["Tunnel-Medium-Type:1", "IEEE-802"],
                                    ["Tunnel-Private-Group-Id:1", "42"]]}})
    world.call("PATCH", f"/core/users/{world.users['dave']['pk']}/", json={"groups": [world.group_pk, vlan["pk"]]})
    reply = world.pap_reply("dave", PASSWORD)
    assert reply is not None and reply.code == AccessAccept
    assert (reply["Tunnel-Type"], reply["Tunnel-Medium-Type"], reply["Tunnel-Private-Group-Id"]) == (
        ["VLAN"], ["IEEE-802"], ["42"])
    assert "Tunnel-Private-Group-Id:1 = \"42\"" in world.radtest("dave", PASSWORD)
    alice = world.pap_reply("alice", PASSWORD)
    assert alice.code == AccessAccept and "Tunnel-Type" not in alice


MAPPING = """
if not request.user.attributes.get("e2e_mapping"):
    return packet
define_attribute(vendor_code=9, vendor_name="Cisco", attribute_name="AV-Pair", attribute_code=1,
                 attribute_type="string")
packet["Cisco-AV-Pair"] = "shell:priv-lvl=15"
packet["Tunnel-Type:1"] = "VLAN"
packet["Tunnel-Medium-Type:1"] = "IEEE-802"
packet["Tunnel-Private-Group-Id:1"] = "77"
return packet
"""


def test_property_mapping_attributes_in_the_accept(world):
    """A RADIUS property mapping (VLAN and a Cisco vendor attribute through define_attribute) on the provider:
    the Accept of a PAP and of a CHAP request carries its attributes, pyrad decodes them."""
    mapping = world.call("POST", "/propertymappings/provider/radius/", json={"name": "e2e", "expression": MAPPING})
    wide, narrow = world.providers["wide"], world.providers["narrow"]
    for pk in (wide, narrow):
        world.call("PATCH", f"/providers/radius/{pk}/", json={"property_mappings": [mapping["pk"]]})
    world.call("PATCH", f"/core/users/{world.users['alice']['pk']}/", json={"attributes": {"e2e_mapping": True}})
    try:
        reply = world.pap_reply("alice", PASSWORD)
        assert reply is not None and reply.code == AccessAccept
        assert (reply["Tunnel-Type"], reply["Tunnel-Medium-Type"], reply["Tunnel-Private-Group-Id"]) == (
            ["VLAN"], ["IEEE-802"], ["77"])
        # Vendor-Specific, vendor 9 (Cisco), sub-attribute 1 (AV-Pair): not in the dictionary, pyrad keeps it raw
        assert reply[(9, 1)] == [b"shell:priv-lvl=15"]
        out = world.radtest_method("chap", "alice", network_password(world, "alice"))
        assert "Received Access-Accept" in out and "Tunnel-Private-Group-Id:1 = \"77\"" in out, out
        assert "shell:priv-lvl=15" in out, out
    finally:
        for pk in (wide, narrow):
            world.call("PATCH", f"/providers/radius/{pk}/", json={"property_mappings": []})
        world.call("PATCH", f"/core/users/{world.users['alice']['pk']}/", json={"attributes": {}})


def test_duplicate_answered_once(world):
    data = encode_request(Code.ACCESS_REQUEST, WIDE, 77, os.urandom(16), [("User-Name", "alice")],
                          password=PASSWORD)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.settimeout(15)
        sock.sendto(data, ("127.0.0.1", world.auth_port))
        first = sock.recv(4096)
        sock.sendto(data, ("127.0.0.1", world.auth_port))
        second = sock.recv(4096)
    assert first == second and first[0] == Code.ACCESS_ACCEPT
    log = world.outpost.log.read_text(errors="replace")
    assert "answered from the reply cache" in log


def test_accounting_start_and_stop_recorded_as_events(world):
    out = world.radclient("User-Name = alice, Acct-Status-Type = Start, Acct-Session-Id = e2e-1, "
                          "NAS-Identifier = switch-1", secret=NARROW, kind="acct")
    assert "Received Accounting-Response" in out
    out = world.radclient("User-Name = alice, Acct-Status-Type = Stop, Acct-Session-Id = e2e-1, "
                          "Acct-Input-Octets = 1000, Acct-Output-Octets = 2000, Acct-Session-Time = 42, "
                          "Acct-Terminate-Cause = User-Request", secret=NARROW, kind="acct")
    assert "Received Accounting-Response" in out
    events = world.call("GET", "/events/events/", params={"action": "custom_radius_accounting",
                                                          "username": "alice"})["results"]
    by_status = {e["context"]["status"]: e for e in events if e["context"].get("session_id") == "e2e-1"}
    assert set(by_status) == {"Start", "Stop"}
    stop = by_status["Stop"]["context"]
    assert (stop["input_octets"], stop["output_octets"], stop["session_time"]) == (1000, 2000, 42)
    assert by_status["Stop"]["client_ip"] == "127.0.0.1" and by_status["Start"]["context"]["nas_identifier"] == \
        "switch-1"


def test_deactivated_user_rejected_on_next_request(world):
    assert world.pap("bob", PASSWORD) == AccessAccept
    world.call("PATCH", f"/core/users/{world.users['bob']['pk']}/", json={"is_active": False})
    assert world.pap("bob", PASSWORD) == AccessReject


def test_user_removed_from_group_rejected_on_next_request(world):
    assert world.pap("carol", PASSWORD) == AccessAccept
    world.call("PATCH", f"/core/users/{world.users['carol']['pk']}/", json={"groups": []})
    assert world.pap("carol", PASSWORD) == AccessReject


def test_log_lines_name_the_request_without_secrets(world):
    world.pap("dave", "dave-wrong-" + "x" * 8)
    log = world.outpost.log.read_text(errors="replace")
    assert "radius request" in log and "dave" in log
    for secret in (PASSWORD, "dave-wrong-", WIDE.decode(), NARROW.decode(), LEGACY.decode(),
                   *world.network_passwords.values()):
        assert secret not in log


# -- bind_mode=cached: PAP successes remembered in the outpost, emptied on every configuration refresh ---------

def refreshes(world) -> int:
    return world.outpost.log.read_text(errors="replace").count("configuration refreshed")


def after_refresh(world, change) -> None:
    """Run ``change`` (an API call) and wait until the outpost has refetched its configuration after it: the
    core announces every user, group, membership and provider change (TRIGGER_UPDATE) once it is committed."""
    before = refreshes(world)
    change()
    world.until(lambda: refreshes(world) > before, "a configuration refresh after the change")


def cached_lines(world) -> int:
    return world.outpost.log.read_text(errors="replace").count('"cached": true')


def test_cached_pap_same_accept_without_the_core(world):
    after_refresh(world, lambda: world.call("PATCH", f"/providers/radius/{world.providers['wide']}/",
                                            json={"bind_mode": "cached"}))
    for name in ("erin", "frank", "gina"):
        after_refresh(world, lambda name=name: _user(world, name))
    first = world.pap_reply("dave", PASSWORD)  # dave is in vlan-42 (test_vlan_by_group_in_the_accept)
    before = cached_lines(world)
    second = world.pap_reply("dave", PASSWORD)
    assert first.code == second.code == AccessAccept
    assert cached_lines(world) == before + 1
    attributes = {k: first[k] for k in first.keys() if k != "Message-Authenticator"}
    assert attributes["Tunnel-Private-Group-Id"] == ["42"]
    assert {k: second[k] for k in second.keys() if k != "Message-Authenticator"} == attributes
    # a wrong password for a cached name asks the core (and is rejected); so does a name never seen
    assert world.pap("dave", "not-" + PASSWORD) == AccessReject
    assert cached_lines(world) == before + 1


def test_cached_never_a_one_time_code(world):
    code = world.code()
    assert world.pap("mfa-user", f"{PASSWORD};{code}") == AccessAccept
    before = cached_lines(world)
    assert world.pap("mfa-user", f"{PASSWORD};{code}") == AccessReject  # the core refuses the replayed code
    assert cached_lines(world) == before


@pytest.mark.parametrize(("name", "change", "new_password"), [
    ("erin", lambda w: w.call("PATCH", f"/core/users/{w.users['erin']['pk']}/", json={"is_active": False}), None),
    ("frank", lambda w: w.call("PATCH", f"/core/users/{w.users['frank']['pk']}/", json={"groups": []}), None),
    ("gina", lambda w: w.call("POST", f"/core/users/{w.users['gina']['pk']}/set_password/",
                              json={"password": "Gina-new-password-9"}), "Gina-new-password-9"),
], ids=["deactivated", "removed-from-group", "password-changed"])
def test_cached_revocation_on_the_next_request(world, name, change, new_password):
    assert world.pap(name, PASSWORD) == AccessAccept
    before = cached_lines(world)
    assert world.pap(name, PASSWORD) == AccessAccept
    assert cached_lines(world) == before + 1  # answered from the cache
    after_refresh(world, lambda: change(world))
    assert world.pap(name, PASSWORD) == AccessReject
    if new_password:
        assert world.pap(name, new_password) == AccessAccept
