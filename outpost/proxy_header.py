"""The PROXY protocol (HAProxy's v1 text and v2 binary header) on accepted TCP sockets, as authentik's outposts
take it: from a peer inside AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS a header is used when present (the connection
is then from the address it names) and the connection is taken as it is when there is none; from any other
peer nothing is looked for, so a header it sends is just bytes of the protocol that follows (an LDAP
protocolError).

The header is read with MSG_PEEK before the socket gets a transport, and exactly its bytes are consumed: what
follows (an LDAP message, or the TLS ClientHello of LDAPS) stays in the socket for the transport. The
``proxy-protocol`` package parses and validates; this module only finds where a header ends.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

from proxyprotocol import ProxyProtocolIncompleteError, ProxyProtocolSyntaxError
from proxyprotocol.detect import ProxyProtocolDetect
from proxyprotocol.result import ProxyResultIPv4, ProxyResultIPv6

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the specification's limit)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX = 16 + 1024  # a header with more TLVs than this is refused (ours need none of them)
READ_TIMEOUT = 3.0  # seconds a trusted peer may take to send its header (as authentik's go-proxyproto)


class ProxyHeaderError(ValueError):
    """A trusted peer sent a malformed or oversized PROXY header: the connection is closed."""


def trusted(address: str, networks: Iterable) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def header_length(data: bytes) -> int | None:
    """How many bytes the PROXY header at the start of ``data`` takes: 0 when ``data`` does not start with one,
    None when more bytes are needed to tell. Raises ProxyHeaderError past the size limits."""
    for signature in (V1_PREFIX, V2_SIGNATURE):
        head = data[:len(signature)]
        if not signature.startswith(head):
            continue
        if len(head) < len(signature):
            return None
        if signature is V1_PREFIX:
            end = data.find(b"\r\n", 0, V1_MAX)
            if end >= 0:
                return end + 2
            if len(data) >= V1_MAX:
                raise ProxyHeaderError(f"PROXY v1 line longer than {V1_MAX} bytes")
            return None
        if len(data) < 16:
            return None
        length = 16 + int.from_bytes(data[14:16], "big")
        if length > V2_MAX:
            raise ProxyHeaderError(f"PROXY v2 header of {length} bytes (at most {V2_MAX} taken)")
        return length if len(data) >= length else None
    return 0


def source_of(header: bytes) -> str | None:
    """The client address a complete header names; None for LOCAL/UNKNOWN (a health check: keep the peer)."""
    try:
        result = ProxyProtocolDetect().unpack(header)
    except (ProxyProtocolSyntaxError, ProxyProtocolIncompleteError, ValueError) as exc:
        raise ProxyHeaderError(f"malformed PROXY header: {exc or type(exc).__name__}") from None
    if isinstance(result, (ProxyResultIPv4, ProxyResultIPv6)):
        return str(result.source[0])
    return None


async def read_header(sock: socket.socket, timeout: float = READ_TIMEOUT) -> str | None:
    """Consume a PROXY header from the non-blocking ``sock`` if one starts it; the address it names, or None
    (no header, or LOCAL/UNKNOWN). A peer that says nothing within ``timeout``: no header (a server-speaks-
    first client would never send one). Raises ProxyHeaderError on a bad header, OSError if the peer goes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            data = sock.recv(V2_MAX, socket.MSG_PEEK)
        except BlockingIOError:
            data = None
        if data == b"":
            raise ConnectionResetError("closed before sending anything")
        if data is not None:
            length = header_length(data)
            if length == 0:
                return None
            if length is not None:
                header = sock.recv(length)  # the peeked bytes are there: this takes exactly them
                return source_of(header)
        remaining = deadline - loop.time()
        if remaining <= 0:
            if data:
                raise ProxyHeaderError("incomplete PROXY header")
            return None
        if data:  # part of a header: the socket stays readable, so wait for the rest by time, not readiness
            await asyncio.sleep(min(0.01, remaining))
        else:
            await _readable(loop, sock, remaining)


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> None:
    ready = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        async with asyncio.timeout(timeout):
            await ready
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)
