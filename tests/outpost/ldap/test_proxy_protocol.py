"""PROXY protocol v1/v2 on the LDAP listeners (outpost/proxy_header.py): from a trusted peer the header's address
is the client's (the failed-bind limits, the log and the core's login events see it); from any other peer a
header is not looked for and is a protocol error; a malformed header from a trusted peer closes the connection."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl

import pytest
from proxyprotocol.result import ProxyResultIPv4, ProxyResultIPv6, ProxyResultLocal
from proxyprotocol.v2 import ProxyProtocolV2

from outpost.proxy_header import V1_MAX, V2_MAX, ProxyHeaderError, header_length, source_of, trusted
from tests.outpost.ldap.conftest import BASE, PASSWORD
from tests.protocols.ldap import client

ALICE = f"cn=alice,ou=users,{BASE}"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
V1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 50000 389\r\n"


def v2(source: str) -> bytes:
    ip = ipaddress.ip_address(source)
    kind = ProxyResultIPv4 if ip.version == 4 else ProxyResultIPv6
    dest = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
    return ProxyProtocolV2().pack(kind((ip, 50000), (dest, 389)))


def test_header_length_finds_where_a_header_ends():
    bind = client.bind(1, ALICE, PASSWORD)
    assert header_length(bind) == 0  # an LDAP message (0x30...)
    assert header_length(b"\x16\x03\x01") == 0  # a TLS ClientHello
    assert header_length(V1 + bind) == len(V1)
    assert header_length(V1[:10]) is None and header_length(b"PRO") is None
    header = v2("2001:db8::5")
    assert header_length(header + bind) == len(header)
    assert header_length(header[:15]) is None and header_length(header[:20]) is None
    with pytest.raises(ProxyHeaderError):
        header_length(b"PROXY " + b"A" * V1_MAX)
    with pytest.raises(ProxyHeaderError):
        header_length(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + (V2_MAX).to_bytes(2, "big"))


def test_source_of_each_kind_of_header():
    assert source_of(V1) == "203.0.113.7"
    assert source_of(b"PROXY TCP6 2001:db8::5 ::1 50000 389\r\n") == "2001:db8::5"
    assert source_of(v2("198.51.100.9")) == "198.51.100.9"
    assert source_of(b"PROXY UNKNOWN\r\n") is None  # the proxy's own health check: keep the peer's address
    assert source_of(ProxyProtocolV2().pack(ProxyResultLocal())) is None
    for bad in (b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n", b"PROXY TCP9 1.2.3.4 1.2.3.4 1 2\r\n"):
        with pytest.raises(ProxyHeaderError):
            source_of(bad)


def test_trusted_networks():
    assert trusted("127.0.0.1", LOOPBACK) and trusted("::ffff:127.0.0.1", LOOPBACK)
    assert not trusted("10.0.0.1", LOOPBACK) and not trusted("not-an-ip", LOOPBACK)


async def exchange(port: int, prefix: bytes, request: bytes, *, tls: bool = False) -> list[dict]:
    """Send ``prefix`` in the clear (the PROXY header), then ``request`` (over TLS for LDAPS); the answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(prefix)
        await writer.drain()
        if tls:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            await writer.start_tls(context)
        writer.write(request)
        await writer.drain()
        data = b""
        async with asyncio.timeout(10):
            while True:
                try:
                    chunk = await reader.read(65536)
                except ConnectionResetError:  # closed with our bytes unread: a reset, as closed as it gets
                    return []
                if not chunk:
                    break
                data += chunk
                try:
                    return client.decode_all(data)
                except Exception:  # noqa: S112 - a partial answer: read on
                    continue
        return client.decode_all(data) if data else []
    finally:
        writer.close()


async def test_a_trusted_proxy_names_the_client_plain_and_ldaps(ldap_server):
    server = await ldap_server(trusted_proxies=LOOPBACK)
    answer = await exchange(server.port(0), V1, client.bind(1, ALICE, PASSWORD))
    assert answer[0]["op"] == "bindResponse" and answer[0]["code"] == 0
    assert server.link.calls[-1][3] == "203.0.113.7"
    answer = await exchange(server.port(1), v2("2001:db8::5"), client.bind(1, ALICE, PASSWORD), tls=True)
    assert answer[0]["code"] == 0 and server.link.calls[-1][3] == "2001:db8::5"
    answer = await exchange(server.port(0), b"", client.bind(1, ALICE, PASSWORD))  # no header: the peer itself
    assert answer[0]["code"] == 0 and server.link.calls[-1][3] == "127.0.0.1"
    answer = await exchange(server.port(0), b"PROXY UNKNOWN\r\n", client.bind(1, ALICE, PASSWORD))
    assert answer[0]["code"] == 0 and server.link.calls[-1][3] == "127.0.0.1"


async def test_a_header_from_an_untrusted_peer_is_not_taken(ldap_server):
    server = await ldap_server(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    answer = await exchange(server.port(0), V1, client.bind(1, ALICE, PASSWORD))
    assert [a["op"] for a in answer] == ["extendedResp"] and answer[0]["code"] == 2  # notice of disconnection
    assert server.link.calls == []


async def test_a_malformed_header_from_a_trusted_peer_closes(ldap_server):
    server = await ldap_server(trusted_proxies=LOOPBACK)
    for header in (b"PROXY TCP4 garbage\r\n", b"PROXY " + b"9" * 200):
        assert await exchange(server.port(0), header, client.bind(1, ALICE, PASSWORD)) == []
    assert server.link.calls == []
    answer = await exchange(server.port(0), V1, client.bind(1, ALICE, PASSWORD))  # and it still answers
    assert answer[0]["code"] == 0
