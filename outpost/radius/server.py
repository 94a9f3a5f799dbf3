"""UDP glue for the RADIUS outpost: asyncio datagram endpoints on the authentication and accounting
listeners, each datagram handed to handlers.RadiusHandler in its own task, its reply (if any) sent back to
the source address. No protocol rules here."""

from __future__ import annotations

import asyncio
import logging
import socket

from outpost.config import Listen
from outpost.radius.handlers import RadiusHandler

LOGGER = logging.getLogger("gatehouse.outpost.radius")
MAX_IN_FLIGHT = 4096  # datagrams being decided at once; beyond that new ones are dropped (and counted)
RECEIVE_BUFFER = 4 * 1024 * 1024


class RadiusProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: RadiusHandler, *, accounting: bool = False, max_in_flight: int = MAX_IN_FLIGHT):
        self.handler = handler
        self.accounting = accounting
        self.max_in_flight = max_in_flight
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task] = set()
        self.overflow = 0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if len(self.tasks) >= self.max_in_flight:
            self.overflow += 1
            return
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr) -> None:
        reply = await self.handler.handle(data, addr[0], addr[1], accounting=self.accounting)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable from a NAS that went away
        LOGGER.debug("radius socket error: %s", exc)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def listen(listen_at: Listen, variable: str, handler: RadiusHandler, *, accounting: bool = False,
                 reuse_port: bool = False) -> RadiusProtocol:
    """Bind ``listen_at`` (IPv4 or IPv6; ``[::]`` takes both where the system allows) and serve."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in listen_at.host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and listen_at.host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            pass
        sock.bind((listen_at.host, listen_at.port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {variable}={listen_at} (UDP): {exc.strerror or exc}; free the port or "
                      f"set {variable} to another host:port") from None
    _transport, protocol = await loop.create_datagram_endpoint(
        lambda: RadiusProtocol(handler, accounting=accounting), sock=sock)
    return protocol
