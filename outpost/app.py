"""One app factory for a standalone outpost (DESIGN §1, §4.3): health, the core link in ``cleanup_ctx``,
then the kind's own routes; and a small metrics app for AUTHENTIK_LISTEN__METRICS, which serves the main app's
registry (authentik's outpost metrics, outpost/metrics.py, and the process's).

The proxy outpost also serves the main application over HTTPS on AUTHENTIK_LISTEN__HTTPS, as authentik's does:
with AUTHENTIK_PROXY__TLS_CERT_FILE's certificate, else a self-signed one made on first start and kept in the state
directory (protocols/tls.py, the core's code for :9443).

Health, as authentik's outposts answer it (reference §1.4): ``/outpost.goauthentik.io/ping`` -> 204 on both
listeners. Ours in addition: ``/-/health/live/`` (the process runs) and ``/-/health/ready/`` (200 once a
configuration has been fetched; it stays 200 while the core is away, since the last one keeps being served).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import signal
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from outpost import metrics as om
from outpost.config import Listen, OutpostConfig
from outpost.core_link import CoreLink
from protocols import tls
from protocols.forward import PING_PATH
from protocols.version import VERSION

LOGGER = logging.getLogger("gatehouse.outpost")
LINK_KEY = web.AppKey("core_link", CoreLink)
KIND_KEY = web.AppKey("outpost_kind", str)
PING = PING_PATH
HEALTH_LIVE = "/-/health/live/"
HEALTH_READY = "/-/health/ready/"
KINDS = ("proxy", "ldap", "radius")


class AccessLog(AbstractAccessLogger):
    """aiohttp's default access log (``AccessLogger.LOG_FORMAT``: the same message and ``extra`` fields, which
    tests/outpost/test_access_log.py compares), built directly, with the request start time formatted once per
    second (kept on the class: aiohttp makes one logger per connection). About 10% of the CPU time of a
    forward-auth answer (bench forward_auth)."""

    _second = -1
    _stamp = ""

    def log(self, request, response, time_taken: float) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        try:
            started = int(time.time() - time_taken)
            if started != AccessLog._second:
                AccessLog._stamp = datetime.datetime.fromtimestamp(started).astimezone().strftime(
                    "[%d/%b/%Y:%H:%M:%S %z]")
                AccessLog._second = started
            stamp, remote = AccessLog._stamp, request.remote or "-"
            line = f"{request.method} {request.path_qs} HTTP/{request.version.major}.{request.version.minor}"
            referer, agent = request.headers.get("Referer", "-"), request.headers.get("User-Agent", "-")
            status, size = response.status, response.body_length
            # logger.info() without its findCaller() stack walk (a third of the line's cost): the record has
            # no source file and line, which the access line never shows.
            logger.handle(logger.makeRecord(
                logger.name, logging.INFO, "(access)", 0, f'{remote} {stamp} "{line}" {status} {size} "{referer}" '
                f'"{agent}"', None, None, extra={
                    "remote_address": remote, "request_start_time": stamp, "first_request_line": line,
                    "response_status": status, "response_size": size,
                    "request_header": {"Referer": referer, "User-Agent": agent}}))
        except Exception:  # as aiohttp's: a log line never breaks a response
            self.logger.exception("Error in logging")


async def ping(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    link = request.app[LINK_KEY]
    body = {"configured": link.snapshot is not None, "core_connected": link.connected,
            "generation": link.snapshot.generation if link.snapshot else 0}
    return web.json_response({"status": "ok" if link.snapshot else "unavailable", **body},
                             status=200 if link.snapshot else 503)


def _health_routes(app: web.Application, with_ready: bool) -> None:
    app.router.add_get(PING, ping)  # add_get answers HEAD too (the healthcheck sends HEAD)
    for path in (HEALTH_LIVE, HEALTH_LIVE.rstrip("/")):
        app.router.add_get(path, live)
    if with_ready:
        for path in (HEALTH_READY, HEALTH_READY.rstrip("/")):
            app.router.add_get(path, ready)


def session_store(config: OutpostConfig):
    """Redis when AUTHENTIK_REDIS__HOST or __URL is set (replicas share sessions), else memory with a file snapshot."""
    from outpost.proxy.session import MemoryStore, RedisStore

    if config.redis_url:
        from protocols.redis_url import async_client

        return RedisStore(async_client(config.redis_url))
    return MemoryStore(Path(config.state_dir) / "gatehouse-proxy-sessions.json")


def create_app(config: OutpostConfig, kind: str, *, link: CoreLink | None = None,
               reuse_port: bool = False) -> web.Application:
    """The outpost's main application (AUTHENTIK_LISTEN__HTTP). ``link`` is for tests; ``reuse_port`` lets
    --workers processes share the LDAP and RADIUS listeners too."""
    if kind not in KINDS:
        raise ValueError(f"outpost kind {kind!r}: expected one of {', '.join(KINDS)}")
    app = web.Application()
    link = link or CoreLink(config.authentik_host, config.token, insecure=config.insecure, kind=kind,
                            browser_host=config.host_browser)
    app[LINK_KEY] = link
    app[KIND_KEY] = kind
    registry = om.registry_of(app)
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    registry.register(om.LinkCollector(link, kind, VERSION))
    _health_routes(app, with_ready=True)

    async def link_ctx(app: web.Application) -> AsyncIterator[None]:
        await link.start()
        try:
            yield
        finally:
            await link.close()

    app.cleanup_ctx.append(link_ctx)  # before the kind's resources, which subscribe to the link
    if kind == "proxy":
        from outpost.proxy import setup

        store, http_factory = om.instrument_proxy(app, link, session_store(config))
        setup(app, config, store=store, link=link, http_factory=http_factory)
        from outpost.proxy.reverse import add_catch_all

        add_catch_all(app)
    elif kind == "ldap":
        from outpost.ldap.server import setup as setup_ldap

        setup_ldap(app, config, link, reuse_port=reuse_port)
    else:  # radius (KINDS is checked above)
        from outpost.radius import setup as radius_setup

        radius_setup(app, link, config, reuse_port=reuse_port)
    return app


def create_metrics_app(main: web.Application) -> web.Application:
    """AUTHENTIK_LISTEN__METRICS: /metrics (Prometheus, the main app's registry) and the health endpoints."""
    registry = om.registry_of(main)

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app[LINK_KEY] = main[LINK_KEY]
    app.router.add_get("/metrics", metrics)
    _health_routes(app, with_ready=True)
    return app


TLS_DIR = "gatehouse-tls"  # under the state directory: the self-signed certificate (protocols/tls.py)


def tls_context(config: OutpostConfig) -> ssl.SSLContext:
    """The HTTPS listener's context: AUTHENTIK_PROXY__TLS_CERT_FILE, else the state directory's self-signed
    certificate (made, or renewed before it expires, here). Blocking: run it in a thread."""
    if config.tls_cert_file:
        return tls.server_context(config.tls_cert_file, "AUTHENTIK_PROXY__TLS_CERT_FILE")
    return tls.server_context(tls.ensure_certificate(Path(config.state_dir) / TLS_DIR))


async def _start_site(runner: web.AppRunner, listen: Listen, variable: str, reuse_port: bool,
                      ssl_context: ssl.SSLContext | None = None) -> None:
    try:
        await web.TCPSite(runner, listen.host, listen.port, reuse_port=reuse_port or None,
                          ssl_context=ssl_context).start()
    except OSError as exc:
        raise OSError(f"cannot listen on {variable}={listen}: {exc.strerror or exc}; free the port or set "
                      f"{variable} to another host:port") from None


async def serve(config: OutpostConfig, kind: str, *, stop: asyncio.Event | None = None,
                reuse_port: bool = False) -> None:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives; aiohttp runs the cleanup_ctx on the way out."""
    app = create_app(config, kind, reuse_port=reuse_port)
    metrics_app = create_metrics_app(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5, access_log_class=AccessLog)
    metrics_runner = web.AppRunner(metrics_app, access_log=None, handle_signals=False)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    ssl_context = await loop.run_in_executor(None, tls_context, config) if kind == "proxy" else None
    await runner.setup()
    await metrics_runner.setup()
    try:
        await _start_site(runner, config.listen_http, "AUTHENTIK_LISTEN__HTTP", reuse_port)
        listening = {"kind": kind, "http": str(config.listen_http)}
        if ssl_context is not None:
            await _start_site(runner, config.listen_https, "AUTHENTIK_LISTEN__HTTPS", reuse_port, ssl_context)
            listening["https"] = str(config.listen_https)
        await _start_site(metrics_runner, config.listen_metrics, "AUTHENTIK_LISTEN__METRICS", reuse_port)
        LOGGER.info("outpost listening", extra={**listening, "metrics": str(config.listen_metrics),
                                                "core": config.authentik_host})
        await stop.wait()
        LOGGER.info("outpost shutting down")
    finally:
        await metrics_runner.cleanup()
        await runner.cleanup()
