"""Django's WSGI application, served from the aiohttp front through a small fixed pool of threads.

Why not Django's ASGI handler (core/asgi.py keeps that bridge for custom ASGI apps): it runs each
request's synchronous code in a fresh asgiref thread, which costs ~3 ms a request and gives every
request a new database connection (Django's persistent connections are per thread, so CONN_MAX_AGE
never took effect: 31 PostgreSQL sessions for 30 requests). A fixed pool (AUTHENTIK_WEB__THREADS,
authentik's setting) is the gunicorn "gthread" model: each thread keeps its connection and Django's
request_started/finished signals age it out. Measured with bench/core_login.py.

No library bridges aiohttp to WSGI with streaming in both directions (aiohttp-wsgi buffers and is
unmaintained), so this is PEP 3333 by hand: the environ, a spooled request body, and the response
passed back to the event loop chunk by chunk, with back-pressure.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from protocols.trust import forwarded_scheme

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

BODY_IN_MEMORY = 1024 * 1024  # request bodies above this spill to a temporary file
BODY_MAX = 64 * 1024 * 1024  # above this: 413 (CSV imports are the largest bodies we expect)
_CHUNK = 64 * 1024
_QUEUE_DEPTH = 4  # response chunks in flight between the Django thread and the event loop
_EMPTY_BODY_STATUS = frozenset((204, 304))
_NO_HEADER = object()


def _peer(request: web.Request) -> tuple[str, int]:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    return (peer[0], peer[1]) if isinstance(peer, tuple) else (request.remote or "", 0)


def _scheme(request: web.Request, peer_ip: str, trusted_networks) -> str:
    """The socket's scheme, or X-Forwarded-Proto when the peer is a trusted proxy (so issuer URLs and
    redirects are https behind a TLS-terminating proxy). Any other value of the header is ignored."""
    return forwarded_scheme(request.scheme, request.headers.get("X-Forwarded-Proto"), peer_ip, trusted_networks)


def environ_for(request: web.Request, body, trusted_networks=()) -> dict:
    """PEP 3333 environ. Header names with '_' are dropped (as nginx and gunicorn do): in CGI naming
    'X_authentik_username' and 'X-authentik-username' would become the same key (THREATS 5)."""
    peer_ip, peer_port = _peer(request)
    transport = request.transport
    sock = transport.get_extra_info("sockname") if transport else None
    server_name, server_port = (sock[0], sock[1]) if isinstance(sock, tuple) else ("localhost", 0)
    scheme = _scheme(request, peer_ip, trusted_networks)
    environ = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        # PEP 3333: PATH_INFO is the decoded path as bytes-in-latin-1; Django decodes it as UTF-8.
        "PATH_INFO": request.path.encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": request.rel_url.raw_query_string,
        "SERVER_NAME": server_name,  # Django prefers HTTP_HOST; this is the fallback (PEP 3333)
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
        "REMOTE_ADDR": peer_ip,
        "REMOTE_PORT": str(peer_port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in request.raw_headers:
        name = raw_name.decode("latin-1").upper()
        if "_" in name:
            continue
        value = raw_value.decode("latin-1")
        if name == "CONTENT-TYPE":
            key = "CONTENT_TYPE"
        elif name == "CONTENT-LENGTH":
            key = "CONTENT_LENGTH"
        else:
            key = "HTTP_" + name.replace("-", "_")
        previous = environ.get(key, _NO_HEADER)
        if previous is _NO_HEADER:
            environ[key] = value
        else:
            environ[key] = f"{previous}; {value}" if key == "HTTP_COOKIE" else f"{previous},{value}"
    return environ


async def _spool_body(request: web.Request):
    """The request body in a SpooledTemporaryFile (memory up to 1 MiB), 413 above BODY_MAX."""
    body = tempfile.SpooledTemporaryFile(max_size=BODY_IN_MEMORY)  # noqa: SIM115 - closed by the caller
    size = 0
    if request.body_exists:
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > BODY_MAX:
                body.close()
                raise web.HTTPRequestEntityTooLarge(max_size=BODY_MAX, actual_size=size)
            body.write(chunk)
    body.seek(0)
    return body


class _Answer:
    """Carries one response from the Django thread to the event loop (start, chunks, end)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=_QUEUE_DEPTH)
        self.gone = threading.Event()  # the client went away: stop producing

    def put(self, item) -> None:
        """From the Django thread; blocks while the loop is behind (back-pressure)."""
        if not self.gone.is_set():
            asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop).result()

    def produce(self, app, environ: dict) -> None:
        """Runs in a pool thread: call the app, pass its answer on, close it in this same thread (Django's
        request_finished signal, which ages this thread's database connection, fires on close)."""
        started: list = []

        def start_response(status: str, headers: list, exc_info=None):
            started[:] = [status, headers]
            return lambda data: None  # the legacy write() callable; Django never uses it

        try:
            result: Iterable[bytes] = app(environ, start_response)
            try:
                if not getattr(result, "streaming", False):
                    self.put(("whole", started, b"".join(result)))
                    return
                self.put(("start", started, None))
                for chunk in result:
                    if self.gone.is_set():
                        break
                    if chunk:
                        self.put(("chunk", None, chunk))
                self.put(("end", None, None))
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, which answers 500
            self.put(("error", None, exc))


def _response(request: web.Request, started: list) -> tuple[web.StreamResponse, bool]:
    status_line, headers = started
    status = int(status_line.split(" ", 1)[0])
    response = web.StreamResponse(status=status, reason=status_line.partition(" ")[2] or None)
    for name, value in headers:
        response.headers.add(name, value)  # add(): every Set-Cookie goes out
    empty = request.method == "HEAD" or status in _EMPTY_BODY_STATUS or status < 200
    return response, empty


async def serve(app, pool: ThreadPoolExecutor, request: web.Request, trusted_networks=()) -> web.StreamResponse:
    body = await _spool_body(request)
    loop = asyncio.get_running_loop()
    answer = _Answer(loop)
    job = loop.run_in_executor(pool, answer.produce, app, environ_for(request, body, trusted_networks))
    response = None
    try:
        kind, started, data = await answer.queue.get()
        if kind == "error":
            raise data
        response, empty = _response(request, started)
        if kind == "whole":
            if "Content-Length" not in response.headers and not empty:
                response.content_length = len(data)
            await response.prepare(request)
            if data and not empty:
                await response.write(data)
            await response.write_eof()
            return response
        await response.prepare(request)
        while True:
            kind, _, data = await answer.queue.get()
            if kind == "chunk" and not empty:
                await response.write(data)
            elif kind == "end":
                await response.write_eof()
                return response
            elif kind == "error":
                raise data  # headers are out: aiohttp drops the connection, the client sees a cut body
    except (ClientConnectionResetError, ConnectionResetError):
        return response  # the client went away mid-answer
    finally:
        answer.gone.set()
        # Let a producer blocked on a full queue finish, then release the body.
        while not job.done():
            getter = asyncio.ensure_future(answer.queue.get())
            await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
            getter.cancel()
        body.close()


def wsgi_handler(threads: int, trusted_networks=(), wsgi_app=None):
    """(handler, pool): an aiohttp handler serving Django's WSGI app from ``threads`` threads."""
    if wsgi_app is None:
        from django.core.wsgi import get_wsgi_application

        wsgi_app = get_wsgi_application()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="django")

    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve(wsgi_app, pool, request, trusted_networks)

    return handler, pool
