"""Proxy mode (reference §2.4 "mode = proxy"): authenticate, then stream the request to ``internal_host``.

* Only scheme and host are replaced; path and query are kept. ``ak_proxy.backend_override`` (a URL) replaces
  scheme and host, ``ak_proxy.host_header`` the ``Host`` sent upstream (claims from custom scope mappings).
* Client identity headers (every spelling) and hop-by-hop headers are stripped BEFORE ours are added, on
  every request, unauthenticated paths included (THREATS 5; authentik quirk §8.2).
* ``Authorization``: removed when the request is proxied with an identity (the basic-auth pass-through
  replaces it when enabled), and when it was the credential that authenticated the request. An unconsumed
  header on an unauthenticated path goes through (the application's own API auth).
* ``X-Forwarded-Host`` is used to find the application only from a trusted proxy; ``X-Forwarded-For`` is
  extended from a trusted proxy and otherwise replaced by the peer address (THREATS 2, 3).
* Websockets (RFC 6455): after the decision, the upstream handshake is made first (with the identity
  headers); only when it succeeds is the client upgraded; frames are pumped both ways and close codes relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from outpost.proxy import headers as hdr
from outpost.proxy.apps import AppConfig, UnknownHost, no_app_body
from outpost.proxy.forward_auth import (
    OUTPOST_KEY,
    Context,
    ProxyOutpost,
    context_or_error,
    identity_of,
    respond,
    with_credentials,
)
from outpost.proxy.policy import Request, Verdict, decide
from protocols import forward as fw
from protocols import trust

LOGGER = logging.getLogger("gatehouse.outpost.proxy.reverse")

WS_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                          "sec-websocket-accept", "sec-websocket-protocol"})
WS_MAX_MESSAGE = 16 * 1024 * 1024  # per frame, both directions (aiohttp's default is 4 MiB)


def _lookup(outpost: ProxyOutpost, request: web.Request) -> tuple[AppConfig | None, str, str]:
    """(application, host, scheme) for a proxied request: ``X-Forwarded-Host`` / ``-Proto`` count only from a
    trusted proxy (authentik's lookupApp prefers X-Forwarded-Host)."""
    scheme = "https" if request.secure else "http"
    host = request.host
    if outpost.peer_trusted(request):
        forwarded_host = request.headers.getall("X-Forwarded-Host", [])
        forwarded_proto = request.headers.getall("X-Forwarded-Proto", [])
        if len(forwarded_host) == 1 and forwarded_host[0]:
            host = forwarded_host[0]
        if len(forwarded_proto) == 1 and forwarded_proto[0].strip().lower() in ("http", "https"):
            scheme = forwarded_proto[0].strip().lower()
    for candidate in (scheme, "https" if scheme == "http" else "http"):
        try:
            return outpost.apps.lookup(host, candidate), host, scheme
        except UnknownHost:
            continue
    return None, host, scheme


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


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Catch-all for proxy-mode applications (register it last)."""
    outpost = request.app[OUTPOST_KEY]
    app, host, scheme = _lookup(outpost, request)
    if app is None or app.mode != "proxy":
        return web.json_response(no_app_body(host), status=400)
    try:
        target = fw.from_request_target(app.scheme, app.host, request.raw_path, request.method)
    except fw.TargetError as exc:
        return web.Response(status=exc.status, text=f"bad request: {exc}")
    skip_match = app.skip.match_target(target, full_url=False)
    ctx = await context_or_error(outpost, request, app, skip_match=skip_match)
    if isinstance(ctx, web.Response):
        return ctx
    session = ctx.session
    verdict = with_credentials(ctx, decide(
        Request("proxy", target, fw.classify(request.method, request.headers), skip_match, identity_of(session),
                time.time()), client_id=app.client_id, access=app.access))
    if verdict is Verdict.LOGIN_REDIRECT:
        redirect = fw.redirect_for_start(app.external_host, target, target.path, domain_mode=app.domain_mode,
                                         cookie_domain=app.cookie_domain)
        return web.Response(status=302, headers={"Location": fw.start_location(app.external_host, redirect)})
    if verdict not in (Verdict.ALLOW, Verdict.ALLOW_UNAUTHENTICATED_PATH):
        return await respond(ctx, verdict, target)
    upstream_headers = _upstream_headers(ctx, request, verdict, scheme)
    base = upstream_base(app, session.claims if verdict is Verdict.ALLOW and session else None)
    if _is_websocket(request):
        return await _websocket(ctx, request, base, target, upstream_headers)
    return await _http(ctx, request, base, target, upstream_headers)


def _upstream_headers(ctx: Context, request: web.Request, verdict: Verdict, scheme: str) -> CIMultiDict:
    app, session, outpost = ctx.app, ctx.session, ctx.outpost
    headers = hdr.strip_client_headers(request.headers)
    if verdict is Verdict.ALLOW or ctx.header_auth:
        headers.popall("Authorization", None)  # ours, or replaced by the basic-auth pass-through below
    if verdict is Verdict.ALLOW and session is not None:
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


async def _http(ctx: Context, request: web.Request, base: str, target: fw.Target,
                upstream_headers: CIMultiDict) -> web.StreamResponse:
    app, outpost = ctx.app, ctx.outpost
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


async def _websocket(ctx: Context, request: web.Request, base: str, target: fw.Target,
                     upstream_headers: CIMultiDict) -> web.StreamResponse:
    """RFC 6455 pass-through: upstream handshake first (identity headers on it), then the client's."""
    app, outpost = ctx.app, ctx.outpost
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


def add_catch_all(app: web.Application) -> None:
    """Route every other path to proxy mode (the standalone outpost calls this after setup())."""
    app.router.add_route("*", "/{tail:.*}", proxy_handler)


@web.middleware
async def proxy_mode_hosts(request: web.Request, handler) -> web.StreamResponse:
    """For an app that serves other paths itself (the embedded outpost inside ``ak server``): a request for
    the host of a proxy-mode application goes to proxy mode, everything else to ``handler`` (authentik's
    embedded outpost, reference §2.1: ``ProxyServer.HandleHost``). /outpost.goauthentik.io/* keeps its
    routes (start, callback, sign_out pick the application by host themselves)."""
    outpost = request.app.get(OUTPOST_KEY)
    path = request.path
    outpost_path = path == fw.OUTPOST_PREFIX or path.startswith(fw.OUTPOST_PREFIX + "/")
    if outpost is not None and outpost.apps.has_proxy_mode and not outpost_path:
        app, _, _ = _lookup(outpost, request)
        if app is not None and app.mode == "proxy":
            return await proxy_handler(request)
    return await handler(request)
