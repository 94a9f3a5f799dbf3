"""asyncio socket glue for the LDAP outpost: plain LDAP with StartTLS (AUTHENTIK_LISTEN__LDAP, :3389) and
LDAPS (AUTHENTIK_LISTEN__LDAPS, :6636). Bytes go to a sans-IO ``Connection``, requests to ``Handlers``,
answers back; one operation at a time per connection, in order. A protocol violation gets the notice of
disconnection and a close; a connection idle for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

from aiohttp import web

from outpost import metrics as om
from outpost.config import Listen, OutpostConfig
from outpost.core_link import CoreLink
from outpost.ldap import tls as ldap_tls
from outpost.ldap.handlers import Handlers, Session
from outpost.ldap.metrics import LDAPMetrics
from outpost.proxy_header import ProxyHeaderError, read_header, trusted
from protocols.ldap.connection import Connection, ProtocolViolation

LOGGER = logging.getLogger("gatehouse.outpost.ldap")
IDLE_TIMEOUT = 300.0
READ_SIZE = 64 * 1024
SERVER_KEY = web.AppKey("ldap_server", object)


def setup(app: web.Application, config: OutpostConfig, link: CoreLink, *, reuse_port: bool = False) -> None:
    """Run the LDAP listeners with the app (after the core link starts: its cleanup_ctx comes first)."""
    context = ldap_tls.server_context(config.ldap_tls_cert_file)
    handlers = Handlers(link, tls_available=True)
    metrics = LDAPMetrics(om.registry_of(app), lambda: link.snapshot.name if link.snapshot else "")
    handlers.observe = metrics.observe
    server = LDAPServer(handlers, context, trusted_proxies=tuple(config.trusted_proxy_cidrs))
    app[SERVER_KEY] = server
    link.on_refresh.append(ldap_tls.ProviderCertificates(link, context).refresh)

    async def ldap_ctx(app: web.Application):
        link.on_session_end.append(handlers.end_session)
        await server.start(config.listen_ldap, config.listen_ldaps, reuse_port=reuse_port)
        LOGGER.info("ldap listening", extra={"ldap": str(config.listen_ldap), "ldaps": str(config.listen_ldaps),
                                             "ports": [server.port(i) for i in range(len(server.servers))]})
        try:
            yield
        finally:
            await server.close()

    app.cleanup_ctx.append(ldap_ctx)


def setup_embedded(app: web.Application, link: CoreLink, listen_ldap: Listen, listen_ldaps: Listen,
                   trusted_proxies: tuple = ()) -> Handlers:
    """LDAP inside ``ak server``: nothing listens until an LDAP provider is bound to the embedded outpost; then
    AUTHENTIK_LISTEN__LDAP and __LDAPS open (a port in use is logged once; the core serves on without LDAP)."""
    from outpost.kind_view import KindView

    view = KindView(link, "ldap")
    handlers = Handlers(view, tls_available=True)
    metrics = LDAPMetrics(om.registry_of(app), lambda: link.snapshot.name if link.snapshot else "")
    handlers.observe = metrics.observe
    context = ldap_tls.server_context()
    server = LDAPServer(handlers, context, trusted_proxies=tuple(trusted_proxies))
    app[SERVER_KEY] = server
    view.on_refresh.append(ldap_tls.ProviderCertificates(view, context).refresh)
    state = {"failed": False}

    async def refreshed(snapshot) -> None:
        if not snapshot.providers or server.servers or state["failed"]:
            return
        try:
            await server.start(listen_ldap, listen_ldaps)
        except OSError as exc:
            state["failed"] = True
            await server.close()
            LOGGER.error("embedded outpost: an LDAP listener did not open: %s", exc)
            return
        LOGGER.info("ldap listening", extra={"ldap": str(listen_ldap), "ldaps": str(listen_ldaps), "embedded": True})

    view.on_refresh.append(refreshed)

    async def ldap_ctx(app: web.Application):
        link.on_session_end.append(handlers.end_session)
        try:
            yield
        finally:
            await server.close()

    app.cleanup_ctx.append(ldap_ctx)
    return handlers


class LDAPServer:
    """The listeners and their connections. Sockets are accepted by hand (not asyncio.start_server) so that a
    PROXY header from a trusted peer is taken off the socket before a transport, or LDAPS's TLS, reads it
    (outpost/proxy_header.py)."""

    def __init__(self, handlers: Handlers, ssl_context: ssl.SSLContext | None, *, idle_timeout: float = IDLE_TIMEOUT,
                 trusted_proxies: tuple = ()):
        self.handlers = handlers
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.trusted_proxies = trusted_proxies
        self.servers: list[socket.socket] = []
        self._accepting: list[asyncio.Task] = []
        self._clients: set[asyncio.Task] = set()

    async def start(self, ldap: Listen | None, ldaps: Listen | None, *, reuse_port: bool = False) -> None:
        if ldap is not None:
            self._listen(ldap, "AUTHENTIK_LISTEN__LDAP", False, reuse_port)
        if ldaps is not None and self.ssl_context is not None:
            self._listen(ldaps, "AUTHENTIK_LISTEN__LDAPS", True, reuse_port)

    def _listen(self, listen: Listen, variable: str, tls: bool, reuse_port: bool) -> None:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        try:
            sock = socket.create_server((listen.host, listen.port), family=family, backlog=511, reuse_port=reuse_port,
                                        dualstack_ipv6=family == socket.AF_INET6 and listen.host in ("::", "[::]"))
        except OSError as exc:
            raise OSError(f"cannot listen on {variable}={listen}: {exc.strerror or exc}; free the port or set "
                          f"{variable} to another host:port") from None
        sock.setblocking(False)
        self.servers.append(sock)
        self._accepting.append(asyncio.create_task(self._accept(sock, tls), name=f"ldap-accept-{variable}"))

    async def _accept(self, sock: socket.socket, tls: bool) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE and friends: say so and keep accepting
                LOGGER.warning("ldap accept failed", extra={"reason": str(exc)})
                await asyncio.sleep(0.1)
                continue
            task = asyncio.create_task(self._connection(conn, peer, tls))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    async def _connection(self, conn: socket.socket, peer: tuple, tls: bool) -> None:
        loop = asyncio.get_running_loop()
        address = str(peer[0]) if peer else ""
        try:
            conn.setblocking(False)
            if self.trusted_proxies and trusted(address, self.trusted_proxies):
                address = await read_header(conn) or address
            reader = asyncio.StreamReader(limit=READ_SIZE)
            made: asyncio.Future = loop.create_future()
            # a client_connected_cb marks the stream as the server side: StartTLS then handshakes as a server
            protocol = asyncio.StreamReaderProtocol(reader, lambda _r, w: made.done() or made.set_result(w))
            await loop.connect_accepted_socket(lambda: protocol, conn, ssl=self.ssl_context if tls else None,
                                               ssl_handshake_timeout=10 if tls else None)
            writer = await made
        except (ProxyHeaderError, OSError, ssl.SSLError, TimeoutError) as exc:
            LOGGER.info("ldap connection refused before LDAP", extra={"client": address, "reason": str(exc)})
            conn.close()
            return
        await self.serve_client(reader, writer, tls, address)

    def port(self, index: int) -> int:
        return self.servers[index].getsockname()[1]

    async def close(self) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self._accepting = []
        for sock in self.servers:
            sock.close()
        self.servers = []
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool,
                           address: str | None = None) -> None:
        if address is None:
            address = str((writer.get_extra_info("peername") or ("", 0))[0])
        session = Session(remote_ip=address, tls=tls)
        session.close = writer.close
        conn = Connection()
        idle = _IdleTimer(asyncio.get_running_loop(), self.idle_timeout, writer.close)
        try:
            while not writer.is_closing():
                idle.reading()
                data = await reader.read(READ_SIZE)
                idle.working()
                if idle.expired:
                    LOGGER.debug("ldap connection idle: closed", extra={"client": session.remote_ip})
                    return
                if not data:
                    return
                for event in conn.receive(data):
                    if isinstance(event, ProtocolViolation):
                        LOGGER.info("ldap protocol error: connection closed",
                                    extra={"client": session.remote_ip, "reason": event.reason, "code": 2})
                        writer.write(event.reply)
                        await writer.drain()
                        return
                    reply = await self.handlers.handle(event, session, conn)
                    if reply.data:
                        writer.write(b"".join(reply.data))
                        await writer.drain()
                    if reply.action == "close":
                        return
                    if reply.action == "starttls":
                        if conn.buffered:  # RFC 4511 §4.14.1: nothing may follow StartTLS before the handshake
                            return
                        await writer.start_tls(self.ssl_context, ssl_handshake_timeout=10)
                        session.tls = True
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError) as exc:
            LOGGER.debug("ldap connection dropped", extra={"client": session.remote_ip, "reason": str(exc)})
        finally:
            idle.cancel()
            self.handlers.forget(session)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)


class _IdleTimer:
    """Closes a connection whose read has waited ``timeout`` seconds. One timer per connection, re-armed only
    when it fires, not one per read: ``asyncio.timeout`` around each read (a Timeout object and a timer
    handle made and cancelled per request) was ~5% of a cached lookup's CPU. An operation in progress (not
    reading) is never cut off: the timer then looks again one timeout later."""

    __slots__ = ("loop", "timeout", "close", "since", "waiting", "expired", "handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, close):
        self.loop, self.timeout, self.close = loop, timeout, close
        self.since, self.waiting, self.expired = loop.time(), False, False
        self.handle = loop.call_at(self.since + timeout, self._check)

    def reading(self) -> None:
        self.since, self.waiting = self.loop.time(), True

    def working(self) -> None:
        self.waiting = False

    def _check(self) -> None:
        now = self.loop.time()
        if self.waiting and now - self.since >= self.timeout:
            self.expired = True
            self.close()  # the pending read ends (empty): serve_client returns
            return
        self.handle = self.loop.call_at((self.since if self.waiting else now) + self.timeout, self._check)

    def cancel(self) -> None:
        self.handle.cancel()
