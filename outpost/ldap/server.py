"""asyncio socket glue for the LDAP outpost: plain LDAP with StartTLS (AUTHENTIK_LISTEN__LDAP, :3389) and
LDAPS (AUTHENTIK_LISTEN__LDAPS, :6636). Bytes go to a sans-IO ``Connection``, requests to ``Handlers``,
answers back; one operation at a time per connection, in order. A protocol violation gets the notice of
disconnection and a close; a connection idle for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from aiohttp import web

from outpost import metrics as om
from outpost.config import Listen, OutpostConfig
from outpost.core_link import CoreLink
from outpost.ldap import tls as ldap_tls
from outpost.ldap.handlers import Handlers, Session
from outpost.ldap.metrics import LDAPMetrics
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
    server = LDAPServer(handlers, context)
    app[SERVER_KEY] = server

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


class LDAPServer:
    def __init__(self, handlers: Handlers, ssl_context: ssl.SSLContext | None, *, idle_timeout: float = IDLE_TIMEOUT):
        self.handlers = handlers
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.servers: list[asyncio.Server] = []
        self._clients: set[asyncio.Task] = set()

    async def start(self, ldap: Listen | None, ldaps: Listen | None, *, reuse_port: bool = False) -> None:
        if ldap is not None:
            self.servers.append(await self._listen(ldap, "AUTHENTIK_LISTEN__LDAP", False, reuse_port))
        if ldaps is not None and self.ssl_context is not None:
            self.servers.append(await self._listen(ldaps, "AUTHENTIK_LISTEN__LDAPS", True, reuse_port))

    async def _listen(self, listen: Listen, variable: str, tls: bool, reuse_port: bool) -> asyncio.Server:
        async def accept(reader, writer):
            task = asyncio.current_task()
            self._clients.add(task)
            try:
                await self.serve_client(reader, writer, tls)
            finally:
                self._clients.discard(task)

        try:
            return await asyncio.start_server(accept, listen.host, listen.port, ssl=self.ssl_context if tls else None,
                                              ssl_handshake_timeout=10 if tls else None,
                                              reuse_port=reuse_port or None)
        except OSError as exc:
            raise OSError(f"cannot listen on {variable}={listen}: {exc.strerror or exc}; free the port or set "
                          f"{variable} to another host:port") from None

    def port(self, index: int) -> int:
        return self.servers[index].sockets[0].getsockname()[1]

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        for server in self.servers:  # bounded: a connection still handshaking TLS would keep it waiting
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self.servers = []

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        session = Session(remote_ip=str(peer[0]), tls=tls)
        session.close = writer.close
        conn = Connection()
        try:
            while not writer.is_closing():
                try:
                    async with asyncio.timeout(self.idle_timeout):  # not wait_for: no task per read
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
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
            self.handlers.forget(session)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)
