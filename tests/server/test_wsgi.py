"""The aiohttp -> WSGI bridge (core/wsgi.py), in-process with small WSGI apps; Django itself behind it
is exercised in test_process.py and every suite that starts a real `ak server`."""

import asyncio
import hashlib
import ipaddress
import json
import threading

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core import wsgi


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    payload = {k: v for k, v in environ.items() if isinstance(v, str)}
    payload["sha256"] = hashlib.sha256(body).hexdigest()
    payload["thread"] = threading.current_thread().name
    start_response("201 Created", [("Content-Type", "application/json"),
                                   ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    return [json.dumps(payload).encode()]


class Streamed:
    """A streaming response in Django's manner (``streaming`` attribute, ``close()``)."""

    streaming = True

    def __init__(self, release: threading.Event, closed: threading.Event):
        self.release, self.closed = release, closed

    def __iter__(self):
        yield b"first;"
        self.release.wait(5)
        yield b"second"

    def close(self):
        self.closed.set()


async def client_for(app, trusted=()) -> TestClient:
    handler, pool = wsgi.wsgi_handler(2, trusted, wsgi_app=app)
    web_app = web.Application()
    web_app.router.add_route("*", "/{tail:.*}", handler)

    async def close_pool(_):
        pool.shutdown(wait=False)

    web_app.on_cleanup.append(close_pool)
    client = TestClient(TestServer(web_app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_environ_body_status_and_every_set_cookie():
    client = await client_for(echo)
    try:
        body = b"x" * (3 * 1024 * 1024)  # over the in-memory size: spooled to a file
        response = await client.post("/caf%C3%A9/a?b=1&c=%20", data=body,
                                     headers={"Cookie": "s=1", "X-Multi": "one"})
        assert response.status == 201
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        got = await response.json()
        assert got["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a"
        assert got["QUERY_STRING"] == "b=1&c=%20"
        assert got["REQUEST_METHOD"] == "POST"
        assert got["REMOTE_ADDR"] == "127.0.0.1"
        assert got["HTTP_COOKIE"] == "s=1"
        assert got["sha256"] == hashlib.sha256(body).hexdigest()
        assert got["thread"].startswith("django")
        assert got["wsgi.url_scheme"] == "http"
    finally:
        await client.close()


async def test_underscore_headers_are_dropped_and_duplicates_joined():
    """THREATS 5: X_authentik_username must not become HTTP_X_AUTHENTIK_USERNAME."""
    client = await client_for(echo)
    try:
        response = await client.get("/", headers=[("X_authentik_username", "akadmin"), ("X-Multi", "one"),
                                                  ("X-Multi", "two"), ("Cookie", "a=1"), ("Cookie", "b=2")])
        got = await response.json()
        assert "HTTP_X_AUTHENTIK_USERNAME" not in got
        assert got["HTTP_X_MULTI"] == "one,two"
        assert got["HTTP_COOKIE"] == "a=1; b=2"
    finally:
        await client.close()


async def test_forwarded_proto_only_from_trusted_proxies():
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    untrusted = await client_for(echo)
    trusted = await client_for(echo, trusted=loopback)
    try:
        spoofed = await (await untrusted.get("/", headers={"X-Forwarded-Proto": "https"})).json()
        assert spoofed["wsgi.url_scheme"] == "http"
        honest = await (await trusted.get("/", headers={"X-Forwarded-Proto": "https"})).json()
        assert honest["wsgi.url_scheme"] == "https"
        junk = await (await trusted.get("/", headers={"X-Forwarded-Proto": "gopher"})).json()
        assert junk["wsgi.url_scheme"] == "http"
    finally:
        await untrusted.close()
        await trusted.close()


async def test_streaming_reaches_the_client_before_the_app_finishes_and_closes_in_its_thread():
    release, closed = threading.Event(), threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Streamed(release, closed)

    client = await client_for(app)
    try:
        response = await client.get("/")
        first = await asyncio.wait_for(response.content.readexactly(len(b"first;")), 5)
        assert first == b"first;"
        assert not closed.is_set()
        release.set()
        assert await response.content.read() == b"second"
        await asyncio.get_running_loop().run_in_executor(None, closed.wait, 5)
        assert closed.is_set()
    finally:
        release.set()
        await client.close()


async def test_oversized_body_is_413(monkeypatch):
    monkeypatch.setattr(wsgi, "BODY_MAX", 1000)
    client = await client_for(echo)
    try:
        response = await client.post("/", data=b"y" * 5000)
        assert response.status == 413
    finally:
        await client.close()


async def test_app_exception_is_500_never_2xx():
    def broken(environ, start_response):
        raise RuntimeError("boom")

    client = await client_for(broken)
    try:
        response = await client.get("/")
        assert response.status == 500
    finally:
        await client.close()


async def test_head_and_304_carry_no_body():
    def app(environ, start_response):
        status = "304 Not Modified" if environ["PATH_INFO"] == "/cached" else "200 OK"
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"" if status.startswith("304") else b"hello"]

    client = await client_for(app)
    try:
        head = await client.head("/")
        assert head.status == 200 and await head.read() == b""
        cached = await client.get("/cached")
        assert cached.status == 304 and await cached.read() == b""
    finally:
        await client.close()
