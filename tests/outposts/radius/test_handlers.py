"""outpost/radius/handlers.py with a fake core link (the real call: test_radius_e2e.py), and one pass through
real UDP sockets on 127.0.0.1 (outpost/radius/server.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry
from pyrad.packet import AcctPacket, AuthPacket

from outpost.config import Listen
from outpost.core_link import Snapshot
from outpost.radius.handlers import RadiusHandler, ReplyCache
from outpost.radius.metrics import RadiusMetrics
from outpost.radius.server import listen
from protocols.radius import mschap
from protocols.radius.codec import Code, dictionary, encode_request
from tests.conftest import need

SECRET = b"outer-secret"
INNER = b"inner-secret"


@dataclass
class Answer:
    result: str
    reason: str = ""
    user: dict | None = None
    reply_attributes: tuple = ()
    session_id: str | None = None


@dataclass
class FakeLink:
    providers: tuple
    calls: list = field(default_factory=list)
    gate: asyncio.Event | None = None
    fail: bool = False
    reply_attributes: tuple = ()
    on_refresh: list = field(default_factory=list)
    on_session_end: list = field(default_factory=list)
    generation: int = 1
    accounting: list = field(default_factory=list)
    record_ok: bool = True

    @property
    def snapshot(self):
        return Snapshot(outpost={"name": "radius-outpost"}, providers=self.providers, generation=self.generation)

    async def authenticate(self, kind, provider_pk, username, password, remote_ip):
        self.calls.append((kind, provider_pk, username, password, remote_ip))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("core unreachable")
        if password in ("pw", "pw;123456"):
            return Answer("ok", "", {"username": username}, self.reply_attributes, session_id=f"sid-{username}")
        return Answer("invalid_credentials", "wrong password")

    async def radius_challenge(self, provider_pk, body):
        """The core's side, with the network password "net-pw" for alice."""
        self.calls.append(("challenge", provider_pk, body["username"], body["method"], body["remote_ip"]))
        from protocols.radius import mschap

        challenge, response = bytes.fromhex(body["challenge"]), bytes.fromhex(body["response"])
        if body["method"] == "chap":
            ok = mschap.chap_valid(body["ident"], b"net-pw", challenge, response)
            return {"result": "ok" if ok else "invalid_credentials", "reason": "chap", "reply_attributes": []}
        if body["method"] == "mschap":
            ok = mschap.verify_mschap("net-pw", challenge, response)
            return {"result": "ok" if ok else "invalid_credentials", "reason": "mschap", "reply_attributes": []}
        peer = bytes.fromhex(body["peer_challenge"])
        if not mschap.verify_mschapv2("net-pw", challenge, peer, body["username"], response):
            return {"result": "invalid_credentials", "reason": "mschapv2"}
        send, recv = mschap.mppe_keys("net-pw", response)
        return {"result": "ok", "reason": "mschapv2", "reply_attributes": [],
                "authenticator_response": mschap.authenticator_response("net-pw", response, peer, challenge,
                                                                        body["username"]),
                "mppe_send_key": send.hex(), "mppe_recv_key": recv.hex()}

    async def radius_accounting(self, provider_pk, record):
        self.accounting.append((provider_pk, record))
        return self.record_ok


def providers(**first):
    return (
        {"pk": 1, "name": "wide", "client_networks": "127.0.0.0/8, ::1/128", "shared_secret": SECRET.decode(),
         "mfa_support": True, "require_message_authenticator": True, **first},
        {"pk": 2, "name": "narrow", "client_networks": "127.0.0.9/32", "shared_secret": INNER.decode(),
         "mfa_support": True, "require_message_authenticator": True},
    )


@pytest.fixture
def link():
    return FakeLink(providers())


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def handler(link, registry):
    return RadiusHandler(link, reject_delay=0, metrics=RadiusMetrics(registry))


def request(password="pw", *, secret=SECRET, ma=True, ident=5, extra=(), user="alice"):
    return encode_request(Code.ACCESS_REQUEST, secret, ident, os.urandom(16),
                          [("User-Name", user), ("NAS-Identifier", "ap"), *extra], password=password,
                          message_authenticator=ma)


def verified(sent: bytes, reply: bytes, secret=SECRET, cls=AuthPacket):
    assert reply is not None, "no answer"
    req = cls(packet=sent, secret=secret, dict=dictionary())
    got = cls(packet=reply, secret=secret, dict=dictionary())
    assert req.VerifyReply(got, reply, enforce_ma=True)
    return got


async def test_pap_accept_and_reject(handler, link):
    data = request("pw")
    assert verified(data, await handler.handle(data, "127.0.0.1", 4000)).code == Code.ACCESS_ACCEPT
    assert link.calls == [("radius", 1, "alice", "pw", "127.0.0.1")]
    data = request("nope")
    assert verified(data, await handler.handle(data, "127.0.0.1", 4000)).code == Code.ACCESS_REJECT


async def test_mfa_password_passed_whole(handler, link):
    data = request("pw;123456")
    assert verified(data, await handler.handle(data, "127.0.0.1", 1)).code == Code.ACCESS_ACCEPT
    assert link.calls[-1][3] == "pw;123456"


async def test_unknown_client_dropped_and_counted(handler, link, registry, caplog):
    with caplog.at_level(logging.INFO, logger="gatehouse.outpost.radius"):
        assert await handler.handle(request(), "10.0.0.1", 1) is None
    (line,) = [r for r in caplog.records if r.getMessage() == "radius request"]
    assert line.reason.startswith("unknown client: 10.0.0.1 ") and "client_networks" in line.reason  # names the fix
    assert await handler.handle(request(), "::2", 1) is None
    assert link.calls == []
    value = registry.get_sample_value
    assert value("gatehouse_outpost_radius_dropped_total", {"reason": "unknown_client"}) == 2
    await handler.handle(b"junk", "127.0.0.1", 1)
    await handler.handle(request(ma=False), "127.0.0.1", 1)
    await handler.handle(request(), "127.0.0.1", 1)
    assert value("gatehouse_outpost_radius_dropped_total", {"reason": "length"}) == 1
    assert value("gatehouse_outpost_radius_dropped_total", {"reason": "message_authenticator_missing"}) == 1
    assert value("gatehouse_outpost_radius_requests_total",
                 {"code": "access-request", "method": "pap", "result": "accept"}) == 1


async def test_ipv6_client(handler):
    data = request()
    assert verified(data, await handler.handle(data, "::1", 1)).code == Code.ACCESS_ACCEPT


async def test_wrong_secret_missing_and_bad_message_authenticator_dropped(handler, link):
    assert await handler.handle(request(secret=b"guess"), "127.0.0.1", 1) is None
    assert await handler.handle(request(ma=False), "127.0.0.1", 1) is None
    bad = bytearray(request())
    at = bad.index(bytes([80, 18])) + 2
    bad[at] ^= 0xFF
    assert await handler.handle(bytes(bad), "127.0.0.1", 1) is None
    assert link.calls == []


async def test_message_authenticator_opt_out():
    link = FakeLink(providers(require_message_authenticator=False))
    handler = RadiusHandler(link, reject_delay=0)
    data = request(ma=False)
    reply = await handler.handle(data, "127.0.0.1", 1)
    assert verified(data, reply).code == Code.ACCESS_ACCEPT  # still signed
    assert await handler.handle(request(secret=b"guess"), "127.0.0.1", 1) is None  # present: still verified


async def test_longest_prefix_secret(handler, link):
    data = request(secret=INNER)
    assert verified(data, await handler.handle(data, "127.0.0.9", 1), INNER).code == Code.ACCESS_ACCEPT
    assert link.calls[-1][1] == 2
    assert await handler.handle(request(secret=SECRET), "127.0.0.9", 1) is None


async def test_status_server_on_both_listeners(handler, link):
    data = encode_request(Code.STATUS_SERVER, SECRET, 1, os.urandom(16))
    assert verified(data, await handler.handle(data, "127.0.0.1", 1)).code == Code.ACCESS_ACCEPT
    reply = await handler.handle(data, "127.0.0.1", 1, accounting=True)
    sent = AuthPacket(packet=data, secret=SECRET, dict=dictionary())
    assert sent.VerifyReply(AcctPacket(packet=reply, secret=SECRET, dict=dictionary()), reply, enforce_ma=True)
    assert link.calls == []


async def test_accounting_recorded_then_answered_once(handler, link):
    data = encode_request(Code.ACCOUNTING_REQUEST, SECRET, 3, b"", [
        ("User-Name", "alice"), ("Acct-Status-Type", "Stop"), ("Acct-Session-Id", "abc"),
        ("Acct-Input-Octets", 5), ("Acct-Input-Gigawords", 1), ("Acct-Output-Octets", 7),
        ("Acct-Session-Time", 60), ("Acct-Terminate-Cause", "User-Request"), ("Calling-Station-Id", "aa-bb")])
    assert await handler.handle(data, "127.0.0.1", 1) is None  # not on the authentication listener
    reply = await handler.handle(data, "127.0.0.1", 1, accounting=True)
    assert verified(data, reply, cls=AcctPacket).code == Code.ACCOUNTING_RESPONSE
    assert await handler.handle(data, "127.0.0.1", 1, accounting=True) == reply  # a retransmit
    assert len(link.accounting) == 1
    pk, record = link.accounting[0]
    assert pk == 1 and record["status"] == "Stop" and record["session_id"] == "abc"
    assert record["input_octets"] == (1 << 32) + 5 and record["output_octets"] == 7
    assert record["session_time"] == 60 and record["terminate_cause"] == "User-Request"
    assert record["nas"] == "127.0.0.1" and record["username"] == "alice"
    assert await handler.handle(request(), "127.0.0.1", 1, accounting=True) is None


async def test_accounting_not_recorded_not_answered(handler, link):
    link.record_ok = False
    data = encode_request(Code.ACCOUNTING_REQUEST, SECRET, 4, b"", [("Acct-Status-Type", "Start")])
    assert await handler.handle(data, "127.0.0.1", 1, accounting=True) is None
    link.record_ok = True
    assert await handler.handle(data, "127.0.0.1", 1, accounting=True) is not None  # the resend is recorded
    assert len(link.accounting) == 2


async def test_duplicate_answered_from_cache(handler, link):
    data = request()
    first = await handler.handle(data, "127.0.0.1", 7)
    second = await handler.handle(data, "127.0.0.1", 7)
    assert first == second and len(link.calls) == 1
    # another source port is another request
    await handler.handle(data, "127.0.0.1", 8)
    assert len(link.calls) == 2


async def test_duplicate_in_flight_dropped(handler, link):
    link.gate = asyncio.Event()
    data = request()
    first = asyncio.create_task(handler.handle(data, "127.0.0.1", 7))
    for _ in range(100):
        if link.calls:
            break
        await asyncio.sleep(0.01)
    assert await handler.handle(data, "127.0.0.1", 7) is None
    link.gate.set()
    reply = await asyncio.wait_for(first, 10)
    assert verified(data, reply).code == Code.ACCESS_ACCEPT
    assert await handler.handle(data, "127.0.0.1", 7) == reply
    assert len(link.calls) == 1


async def test_core_away_no_answer_and_retransmit_retried(handler, link):
    link.fail = True
    data = request()
    assert await handler.handle(data, "127.0.0.1", 7) is None
    link.fail = False
    assert verified(data, await handler.handle(data, "127.0.0.1", 7)).code == Code.ACCESS_ACCEPT
    assert len(link.calls) == 2


def chap_request(password: str, ident: int = 9):
    challenge = os.urandom(16)
    proof = bytes([ident]) + hashlib.md5(bytes([ident]) + password.encode() + challenge).digest()  # noqa: S324
    return encode_request(Code.ACCESS_REQUEST, SECRET, 1, os.urandom(16), [
        ("User-Name", "alice"), ("CHAP-Password", proof), ("CHAP-Challenge", challenge)])


async def test_chap_checked_by_the_core(handler, link):
    data = chap_request("net-pw")
    assert verified(data, await handler.handle(data, "127.0.0.1", 1)).code == Code.ACCESS_ACCEPT
    assert link.calls[-1] == ("challenge", 1, "alice", "chap", "127.0.0.1")
    data = chap_request("wrong")
    assert verified(data, await handler.handle(data, "127.0.0.1", 1)).code == Code.ACCESS_REJECT


def mschapv2_request(password: str, ident: int = 5, user: str = "alice"):
    auth_challenge, peer = os.urandom(16), os.urandom(16)
    nt = mschap.generate_nt_response(auth_challenge, peer, user, password)
    response = bytes([ident, 0]) + peer + b"\x00" * 8 + nt
    data = encode_request(Code.ACCESS_REQUEST, SECRET, 2, os.urandom(16), [
        ("User-Name", user), ("MS-CHAP-Challenge", auth_challenge), ("MS-CHAP2-Response", response)])
    return data, auth_challenge, peer, nt


async def test_mschapv2_success_and_mppe_keys(handler, link):
    data, auth_challenge, peer, nt = mschapv2_request("net-pw")
    got = verified(data, await handler.handle(data, "127.0.0.1", 1))
    assert got.code == Code.ACCESS_ACCEPT
    expected = mschap.authenticator_response("net-pw", nt, peer, auth_challenge, "alice")
    assert got["MS-CHAP2-Success"] == [bytes([5]) + expected.encode()]
    # the MPPE keys are salt-encrypted with the secret (RFC 2548 §2.4.2); pyrad decrypts them
    got.secret, got.authenticator = SECRET, AuthPacket(packet=data, secret=SECRET, dict=dictionary()).authenticator
    send, recv = mschap.mppe_keys("net-pw", nt)
    assert got["MS-MPPE-Send-Key"] == [send] and got["MS-MPPE-Recv-Key"] == [recv]
    data, *_ = mschapv2_request("wrong")
    got = verified(data, await handler.handle(data, "127.0.0.1", 1))
    assert got.code == Code.ACCESS_REJECT and got["MS-CHAP-Error"] == [bytes([5]) + b"E=691 R=0 V=3"]


async def test_mschap_v1(handler, link):
    challenge = os.urandom(8)
    for password, code in (("net-pw", Code.ACCESS_ACCEPT), ("wrong", Code.ACCESS_REJECT)):
        nt = mschap.challenge_response(challenge, mschap.nt_password_hash(password))
        data = encode_request(Code.ACCESS_REQUEST, SECRET, 1, os.urandom(16), [
            ("User-Name", "alice"), ("MS-CHAP-Challenge", challenge),
            ("MS-CHAP-Response", bytes([4, 1]) + b"\x00" * 24 + nt)])
        assert verified(data, await handler.handle(data, "127.0.0.1", 1)).code == code
    assert link.calls[-1] == ("challenge", 1, "alice", "mschap", "127.0.0.1")


async def test_other_methods_rejected_with_the_reason(handler, link, caplog):
    data = encode_request(Code.ACCESS_REQUEST, SECRET, 1, os.urandom(16), [
        ("User-Name", "alice"), ("EAP-Message", b"\x02\x01\x00\x0a\x01alice")])
    with caplog.at_level(logging.INFO, "gatehouse.outpost.radius"):
        assert verified(data, await handler.handle(data, "127.0.0.1", 1)).code == Code.ACCESS_REJECT
    assert link.calls == []
    assert "eap is not supported" in caplog.records[-1].reason


async def test_reply_attributes_in_accept(handler, link):
    link.reply_attributes = (["Tunnel-Type:1", "VLAN"], ["Tunnel-Medium-Type:1", "IEEE-802"],
                             {"name": "Tunnel-Private-Group-Id:1", "value": "42"}, "junk")
    data = request()
    got = verified(data, await handler.handle(data, "127.0.0.1", 1))
    assert got["Tunnel-Private-Group-Id"] == ["42"] and got["Tunnel-Type"] == ["VLAN"]


async def test_garbage_then_still_answers(handler):
    for junk in (b"", b"\x01", os.urandom(20), os.urandom(600), b"\x01\x00\xff\xff" + os.urandom(30)):
        assert await handler.handle(junk, "127.0.0.1", 1) is None
    data = request()
    assert verified(data, await handler.handle(data, "127.0.0.1", 1)).code == Code.ACCESS_ACCEPT


async def test_one_log_line_without_secrets(handler, caplog):
    with caplog.at_level(logging.INFO, "gatehouse.outpost.radius"):
        await handler.handle(request("pw"), "127.0.0.1", 1)
        await handler.handle(request("hunter2-wrong"), "127.0.0.1", 1)
    lines = [r for r in caplog.records if r.msg == "radius request"]
    assert len(lines) == 2
    assert (lines[0].result, lines[0].method, lines[0].user, lines[0].nas) == ("accept", "pap", "alice", "127.0.0.1")
    assert lines[1].result == "reject" and "wrong password" in lines[1].reason
    text = " ".join(str(vars(r)) for r in caplog.records)
    assert "hunter2" not in text and SECRET.decode() not in text


def test_reply_cache_expires_and_is_bounded():
    now = [0.0]
    cache = ReplyCache(ttl=5, size=3, clock=lambda: now[0])
    assert cache.begin("a") == (True, None)
    assert cache.begin("a") == (False, None)
    cache.finish("a", b"r")
    assert cache.begin("a") == (False, b"r")
    now[0] = 6
    assert cache.begin("a") == (True, None)
    for key in "bcdef":
        cache.begin(key)
    assert len(cache) <= 3


def test_reply_cache_never_evicts_a_request_still_being_decided():
    """RFC 5080 §2.2.2: a retransmit of a request being decided is dropped, never decided again, however full."""
    now = [0.0]
    cache = ReplyCache(ttl=5, size=2, clock=lambda: now[0])
    assert cache.begin("slow") == (True, None)  # being decided
    assert cache.begin("a") == (True, None)
    cache.finish("a", b"ra")
    assert cache.begin("b") == (True, None)  # full: the answered "a" goes, "slow" stays
    assert cache.begin("slow") == (False, None)
    assert cache.begin("c") == (False, None)  # every entry still being decided: the new request waits for a resend
    cache.finish("slow", b"rs")
    assert cache.begin("slow") == (False, b"rs")


async def test_udp_listener_end_to_end(handler):
    auth = await listen(Listen("127.0.0.1", 0), "AUTHENTIK_LISTEN__RADIUS", handler)
    port = auth.transport.get_extra_info("sockname")[1]
    try:
        def exchange(data: bytes) -> bytes | None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(0.5)
                sock.sendto(data, ("127.0.0.1", port))
                try:
                    return sock.recv(4096)
                except TimeoutError:
                    return None

        data = request()
        assert verified(data, await asyncio.to_thread(exchange, data)).code == Code.ACCESS_ACCEPT
        assert await asyncio.to_thread(exchange, b"garbage") is None
        data = request("bad")
        assert verified(data, await asyncio.to_thread(exchange, data)).code == Code.ACCESS_REJECT
    finally:
        await auth.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


async def test_udp_listener_ipv6(handler):
    need(_ipv6_loopback(), "an IPv6 loopback (::1)")  # RADIUS on IPv6 is a requirement: CI must show it
    auth = await listen(Listen("::1", 0), "AUTHENTIK_LISTEN__RADIUS", handler)
    port = auth.transport.get_extra_info("sockname")[1]
    try:
        def exchange(data: bytes) -> bytes | None:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2)
                sock.sendto(data, ("::1", port))
                return sock.recv(4096)

        data = request()
        assert verified(data, await asyncio.to_thread(exchange, data)).code == Code.ACCESS_ACCEPT
    finally:
        await auth.close()


async def test_listen_error_names_the_variable(handler):
    first = await listen(Listen("127.0.0.1", 0), "AUTHENTIK_LISTEN__RADIUS", handler)
    port = first.transport.get_extra_info("sockname")[1]
    try:
        with pytest.raises(OSError, match="AUTHENTIK_LISTEN__RADIUS_ACCOUNTING=127.0.0.1:"):
            await listen(Listen("127.0.0.1", port), "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING", handler)
    finally:
        await first.close()


# -- bind_mode=cached (outpost/bind_cache.py) -------------------------------------------------------------------

VLAN = (["Tunnel-Type:1", "VLAN"], ["Tunnel-Medium-Type:1", "IEEE-802"], ["Tunnel-Private-Group-Id:1", "42"])


@pytest.fixture
def cached_link():
    return FakeLink(providers(bind_mode="cached"), reply_attributes=VLAN)


@pytest.fixture
def cached(cached_link, registry):
    return RadiusHandler(cached_link, reject_delay=0, metrics=RadiusMetrics(registry))


async def pap(handler, password="pw", user="alice"):
    data = request(password, user=user)
    return verified(data, await handler.handle(data, "127.0.0.1", 1))


async def test_cached_pap_answered_without_the_core_with_the_same_attributes(cached, cached_link, caplog):
    with caplog.at_level(logging.INFO, "gatehouse.outpost.radius"):
        first, second, third = await pap(cached), await pap(cached), await pap(cached, user="ALICE")
    assert len(cached_link.calls) == 1
    for got in (first, second, third):
        assert got.code == Code.ACCESS_ACCEPT
        assert (got["Tunnel-Private-Group-Id"], got["Tunnel-Type"]) == (["42"], ["VLAN"])
    lines = [r for r in caplog.records if r.msg == "radius request"]
    assert [getattr(r, "cached", False) for r in lines] == [False, True, True]
    assert "pw" not in {str(v) for r in lines for v in vars(r).values()}


async def test_cached_never_a_reject_nor_another_password(cached, cached_link):
    assert (await pap(cached, "wrong")).code == Code.ACCESS_REJECT
    assert (await pap(cached, "wrong")).code == Code.ACCESS_REJECT
    assert len(cached_link.calls) == 2  # a reject is never remembered
    assert (await pap(cached)).code == Code.ACCESS_ACCEPT
    assert (await pap(cached, "wrong")).code == Code.ACCESS_REJECT  # an entry for alice: another password asks
    assert len(cached_link.calls) == 4


async def test_cached_never_a_one_time_code(cached, cached_link):
    for _ in range(2):
        assert (await pap(cached, "pw;123456")).code == Code.ACCESS_ACCEPT
    assert len(cached_link.calls) == 2
    # without mfa_support the core reads "pw;123456" as the password: no code to replay, cached
    no_mfa = RadiusHandler(FakeLink(providers(bind_mode="cached", mfa_support=False)), reject_delay=0)
    for _ in range(2):
        assert (await pap(no_mfa, "pw;123456")).code == Code.ACCESS_ACCEPT
    assert len(no_mfa.link.calls) == 1


async def test_direct_mode_never_cached(handler, link):
    for _ in range(2):
        assert (await pap(handler)).code == Code.ACCESS_ACCEPT
    assert len(link.calls) == 2 and len(handler.credentials) == 0


async def test_cache_emptied_on_every_refresh(cached, cached_link):
    await pap(cached)
    await pap(cached)
    assert len(cached_link.calls) == 1
    cached_link.generation = 2  # TRIGGER_UPDATE -> a new snapshot: the next request sees it
    await pap(cached)
    assert len(cached_link.calls) == 2
    cached.refresh(cached_link.snapshot)  # the on_refresh callback
    assert len(cached.credentials) == 0


async def test_answer_in_flight_across_a_refresh_not_cached(cached, cached_link):
    cached_link.gate = asyncio.Event()
    task = asyncio.create_task(cached.handle(request(), "127.0.0.1", 1))
    while not cached_link.calls:
        await asyncio.sleep(0)
    cached_link.generation = 2  # the user was revoked while the core decided
    cached_link.gate.set()
    await task
    assert len(cached.credentials) == 0


async def test_session_end_drops_its_entry(cached, cached_link):
    await pap(cached)
    await pap(cached, user="bob")
    for callback in cached_link.on_session_end:
        await callback("sid-alice")
    assert len(cached.credentials) == 1
    await pap(cached)
    assert len(cached_link.calls) == 3


async def test_chap_never_cached(cached, cached_link):
    for _ in range(2):
        data = chap_request("net-pw")
        assert verified(data, await cached.handle(data, "127.0.0.1", 1)).code == Code.ACCESS_ACCEPT
    assert [c[0] for c in cached_link.calls] == ["challenge", "challenge"] and len(cached.credentials) == 0
