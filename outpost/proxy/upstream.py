"""Proxy mode's upstream leg (reference §2.4 "mode = proxy"): once the pipeline (outpost/proxy/pipeline.py)
has allowed a request, stream it to ``internal_host`` and the answer back.

* Only scheme and host are replaced; path and query are kept. ``ak_proxy.backend_override`` (a URL) replaces
  scheme and host, ``ak_proxy.host_header`` the ``Host`` sent upstream (claims from custom scope mappings).
* Client identity headers (every spelling) and hop-by-hop headers are stripped BEFORE ours are added, on
  every request, unauthenticated paths included (THREATS 5; authentik quirk §8.2).
* ``Authorization``: removed when the request is proxied with an identity (the basic-auth pass-through
  replaces it when enabled), and when it was the credential that authenticated the request. An unconsumed
  header on an unauthenticated path goes through (the application's own API auth).
* ``X-Forwarded-For`` is extended from a trusted proxy and otherwise replaced by the peer address (THREATS 2, 3).
* Websockets (RFC 6455): after the decision, the upstream handshake is made first (with the identity
  headers); only when it succeeds is the client upgraded; frames are pumped both ways and close codes relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from outpost.proxy import headers as hdr
from outpost.proxy.apps import AppConfig
from outpost.proxy.state import Authentication, ProxyOutpost
from protocols import forward as fw
from protocols import trust

LOGGER = logging.getLogger("gatehouse.outpost.proxy.reverse")

WS_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                          "sec-websocket-accept", "sec-websocket-protocol"})
WS_MAX_MESSAGE = 16 * 1024 * 1024  # per frame, both directions (aiohttp's default is 4 MiB)


async def forward(outpost: ProxyOutpost, request: web.Request, app: AppConfig, auth: Authentication, *,
                  with_identity: bool, target: fw.Target, scheme: str) -> web.StreamResponse:
    """Proxy ``request`` to ``app``'s upstream: with the identity headers of ``auth.session`` when
    ``with_identity`` (Verdict.ALLOW), else without (an unauthenticated path)."""
    session = auth.session if with_identity else None
    upstream_headers = _upstream_headers(outpost, request, app, auth, session, scheme)
    base = upstream_base(app, session.claims if session is not None else None)
    if _is_websocket(request):
        return await _websocket(outpost, app, request, base, target, upstream_headers)
    return await _http(outpost, app, request, base, target, upstream_headers)


def _claims_proxy(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    proxy = claims.get("ak_proxy")
    return proxy if isinstance(proxy, Mapping) else {}


def _valid_host(value: str) -> bool:
    try:
        fw.parse_host(value, "https")
    except fw.TargetError:
        LOGGER.warning("ignoring ak_proxy.host_header %r: not a host[:port]", value)
        return False
    return True


def upstream_base(app: AppConfig, claims: Mapping[str, Any] | None) -> str:
    """``internal_host``, or ``ak_proxy.backend_override`` when it is an absolute http(s) URL."""
    override = _claims_proxy(claims or {}).get("backend_override")
    if isinstance(override, str) and override:
        parts = urlsplit(override)
        if parts.scheme in ("http", "https") and parts.netloc and "@" not in parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
        LOGGER.warning("ignoring ak_proxy.backend_override %r: not an absolute http(s) URL", override)
    parts = urlsplit(app.internal_host)
    return f"{parts.scheme}://{parts.netloc}"




def _upstream_headers(outpost: ProxyOutpost, request: web.Request, app: AppConfig, auth: Authentication,
                      session, scheme: str) -> CIMultiDict:
    """``session``: the identity to send (None on an unauthenticated path)."""
    headers = hdr.strip_client_headers(request.headers)
    if session is not None or auth.header_auth:
        headers.popall("Authorization", None)  # ours, or replaced by the basic-auth pass-through below
    if session is not None:
        hdr.set_headers(headers, hdr.identity_headers(app, session.claims, session.raw_token, outpost.version))
        host_header = _claims_proxy(session.claims).get("host_header")
        if isinstance(host_header, str) and _valid_host(host_header):
            headers["Host"] = host_header
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Proto"] = scheme
    chain = trust.client_chain(request.remote, request.headers.get("X-Forwarded-For"), outpost.trusted)
    headers.popall("X-Forwarded-For", None)
    if chain.forwarded_for:
        headers["X-Forwarded-For"] = chain.forwarded_for
    return headers


def upstream_url(base: str, target: fw.Target, *, websocket: bool = False) -> URL:
    """``base`` + the judged request target, byte for byte: ``encoded=True`` keeps yarl from resolving dot
    segments or decoding escapes (``%2e%2e``, ``%3B``, ``%2F`` in the query) on the way (THREATS 4)."""
    if websocket:
        base = ("wss" if base.startswith("https") else "ws") + base[base.index(":"):]
    return URL(base + target.path_and_query, encoded=True)


async def _http(outpost: ProxyOutpost, app: AppConfig, request: web.Request, base: str, target: fw.Target,
                upstream_headers: CIMultiDict) -> web.StreamResponse:
    assert outpost.http is not None
    try:
        async with outpost.http.request(request.method, upstream_url(base, target), headers=upstream_headers,
                                        data=request.content if request.body_exists else None,
                                        allow_redirects=False, ssl=outpost.upstream_ssl(app),
                                        auto_decompress=False) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in hdr.HOP_BY_HOP and name.lower() != "content-length":
                    response.headers.add(name, value)
            response.headers["X-Powered-By"] = "goauthentik.io"
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        LOGGER.warning("upstream %s failed: %s", base, exc)
        return web.Response(status=502, text="bad gateway: the application's upstream is unreachable")


def _is_websocket(request: web.Request) -> bool:
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return request.method == "GET" and "upgrade" in connection and \
        request.headers.get("Upgrade", "").strip().lower() == "websocket"


async def _websocket(outpost: ProxyOutpost, app: AppConfig, request: web.Request, base: str, target: fw.Target,
                     upstream_headers: CIMultiDict) -> web.StreamResponse:
    """RFC 6455 pass-through: upstream handshake first (identity headers on it), then the client's."""
    assert outpost.http is not None
    for name in list(upstream_headers.keys()):
        if name.lower() in WS_HANDSHAKE:
            upstream_headers.popall(name, None)
    protocols = [p.strip() for value in request.headers.getall("Sec-WebSocket-Protocol", [])
                 for p in value.split(",") if p.strip()]
    url = upstream_url(base, target, websocket=True)
    try:
        upstream = await outpost.http.ws_connect(url, headers=upstream_headers, protocols=protocols,
                                                 ssl=outpost.upstream_ssl(app),
                                                 autoping=True, max_msg_size=WS_MAX_MESSAGE, autoclose=False)
    except aiohttp.WSServerHandshakeError as exc:
        LOGGER.warning("upstream websocket %s refused the handshake: %s", url, exc.status)
        return web.Response(status=502, text="bad gateway: the application refused the websocket")
    except (aiohttp.ClientError, TimeoutError) as exc:
        LOGGER.warning("upstream websocket %s failed: %s", url, exc)
        return web.Response(status=502, text="bad gateway: the application's upstream is unreachable")
    client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=True,
                                   max_msg_size=WS_MAX_MESSAGE, autoclose=False)
    try:
        await client.prepare(request)
        await _pump_both(client, upstream)
    finally:
        if not upstream.closed:
            await upstream.close()
    return client


async def _pump(source, sink, name: str) -> None:
    """Relay frames until ``source`` closes; then close ``sink`` with the same code (RFC 6455 §7.1.5)."""
    async for message in source:
        if message.type == WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == WSMsgType.ERROR:
            LOGGER.info("websocket %s error: %s", name, source.exception())
            break
    if not sink.closed:
        code = source.close_code if source.close_code is not None else 1011
        # 1005/1006 are never sent on the wire (RFC 6455 §7.4.1): an abrupt end becomes 1011 / 1000.
        code = {1005: 1000, 1006: 1011}.get(code, code)
        await sink.close(code=code, message=b"")


async def _pump_both(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    tasks = [asyncio.ensure_future(_pump(client, upstream, "client")),
             asyncio.ensure_future(_pump(upstream, client, "upstream"))]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            # The closing side has sent its close frame; give the other a moment to finish the handshake.
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5)
        for task in done:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError):
                task.result()
    finally:
        for task in tasks:
            task.cancel()

