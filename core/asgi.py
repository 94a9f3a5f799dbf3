"""The Django ASGI application, and the bridge that lets the aiohttp front serve it.

Why a hand-written bridge and not ``aiohttp_asgi.ASGIResource`` (no longer a dependency): that adapter
(0.7) answers ``receive()`` after the body with another empty ``http.request`` instead of waiting for
``http.disconnect``, which makes Django 5's disconnect listener fail its assertion and cancel the
view; and it stores response headers in a dict, so a second ``Set-Cookie`` (session + CSRF)
replaces the first. The ASGI HTTP spec (https://asgi.readthedocs.io/en/latest/specs/www.html) is small
enough to follow directly here.
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()

_EMPTY_BODY_STATUS = frozenset((204, 304))


def _scope(request: web.Request) -> dict:
    """ASGI HTTP connection scope (spec §"HTTP Connection Scope"); client = the socket peer."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    sock = transport.get_extra_info("sockname") if transport else None
    client = (peer[0], peer[1]) if isinstance(peer, tuple) else (request.remote or "", 0)
    server = (sock[0], sock[1]) if isinstance(sock, tuple) else None
    raw_path = request.raw_path.split("?", 1)[0]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": request.rel_url.raw_query_string.encode("latin-1", "replace"),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": client,
        "server": server,
    }


class _Exchange:
    """One request/response between an aiohttp request and an ASGI app."""

    def __init__(self, request: web.Request):
        self.request = request
        self.body_done = False
        self.finished = asyncio.Event()
        self.response: web.StreamResponse | None = None
        self.empty_body = False
        self.client_gone = False

    async def receive(self) -> dict:
        if not self.body_done:
            content = self.request.content
            chunk = await content.readany()
            more = bool(chunk) and not content.at_eof()
            self.body_done = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        # After the body the only event left is the end of the exchange (spec: http.disconnect).
        await self.finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.response is not None:
                raise RuntimeError("ASGI app sent http.response.start twice")
            status = int(message["status"])
            response = web.StreamResponse(status=status)
            for name, value in message.get("headers", ()):
                # add(), not [] =: several Set-Cookie headers must all go out.
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            self.response = response
            self.empty_body = (self.request.method == "HEAD" or status in _EMPTY_BODY_STATUS
                               or status < 200)
        elif kind == "http.response.body":
            response = self.response
            if response is None:
                raise RuntimeError("ASGI app sent a body before http.response.start")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            try:
                if not response.prepared:
                    if not more and "Content-Length" not in response.headers and not self.empty_body:
                        response.content_length = len(body)
                    await response.prepare(self.request)
                if body and not self.empty_body:
                    await response.write(body)
                if not more:
                    await response.write_eof()
                    self.finished.set()
            except (ClientConnectionResetError, ConnectionResetError):
                # The client went away; tell the app (its disconnect listener ends the request).
                self.client_gone = True
                self.finished.set()
        # Other message types (trailers, pathsend) are not negotiated in the scope, so never sent.


async def serve(asgi_app, request: web.Request) -> web.StreamResponse:
    """Run ``asgi_app`` for ``request``; a 500 (never a 2xx) if the app produced no response."""
    exchange = _Exchange(request)
    try:
        await asgi_app(_scope(request), exchange.receive, exchange.send)
    finally:
        exchange.finished.set()
    response = exchange.response
    if response is None:
        raise web.HTTPInternalServerError(text="the application produced no response")
    if not response.prepared and not exchange.client_gone:
        await response.prepare(request)
        await response.write_eof()
    return response


def django_handler(asgi_app=None):
    """An aiohttp handler that passes the request to Django (or another ASGI app)."""
    target = application if asgi_app is None else asgi_app

    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve(target, request)

    return handler
