"""``ak server``: the core's front process (DESIGN §1).

One aiohttp application (uvloop) on AUTHENTIK_LISTEN__HTTP and __HTTPS answers health, metrics and
static files itself, lets the outpost websocket hub and the embedded outpost register their routes,
and passes every other request to the Django ASGI app. A second, tiny application serves /metrics on
AUTHENTIK_LISTEN__METRICS. Every resource lives in ``cleanup_ctx`` (DESIGN §4.3); state lives on the
app under ``web.AppKey``s (§4.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from aiohttp import web

from core.config import CoreConfig, ListenAddress
from core.metrics import DEST_CORE, DEST_EMBEDDED_OUTPOST, Metrics, engine_metrics, metrics_allowed
from outpost.metrics import REGISTRY_KEY, SERVED_BY_CORE
from protocols.forward import OUTPOST_PREFIX

LOGGER = logging.getLogger("gatehouse.server")
ACCESS_LOGGER = logging.getLogger("gatehouse.access")

HEALTH_LIVE = "/-/health/live/"
HEALTH_READY = "/-/health/ready/"
STATIC_PREFIX = "/static/"
STATIC_CACHE_CONTROL = "public, max-age=86400"
READY_CHECK_TIMEOUT = 5.0
# Hooks other components provide: (module, function name, passes config). Absent modules are skipped.
HOOKS = (
    ("core.outposts.websocket", "setup", False),
    ("core.outposts.embedded", "setup", True),
)


# ---------------------------------------------------------------------------------------------------
# Readiness


@dataclass
class Readiness:
    """Is the database reachable and fully migrated? The check runs in one dedicated thread.

    "Migrated" is remembered once true (migrations are not un-applied under a running server); the
    database is pinged on every check. The single thread bounds the check to one DB connection.
    """

    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="ready"))
    migrated: bool = False

    def check_sync(self) -> str | None:
        """None when ready, else the reason (runs in the executor thread)."""
        from django.db import DatabaseError, connection
        from django.db.migrations.executor import MigrationExecutor

        from core.lifecycle import database_problem

        problem = database_problem()
        if problem:
            return problem
        if not self.migrated:
            try:
                executor = MigrationExecutor(connection)
                pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
            except DatabaseError as exc:
                connection.close()
                return f"cannot read migrations: {exc}"
            if pending:
                return f"{len(pending)} migrations not applied yet (run: ak migrate)"
            self.migrated = True
        return None

    async def check(self) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.executor, self.check_sync),
                                          READY_CHECK_TIMEOUT)
        except TimeoutError:
            return f"database check took longer than {READY_CHECK_TIMEOUT:.0f} s"

    def close(self) -> None:
        def _close_connection():
            from django.db import connection

            connection.close()

        with contextlib.suppress(Exception):
            self.executor.submit(_close_connection).result(timeout=READY_CHECK_TIMEOUT)
        self.executor.shutdown(wait=False, cancel_futures=True)


CONFIG_KEY = web.AppKey("config", CoreConfig)
METRICS_KEY = web.AppKey("metrics", Metrics)
READINESS_KEY = web.AppKey("readiness", Readiness)
STATIC_ROOTS_KEY = web.AppKey("static_roots", tuple)


# ---------------------------------------------------------------------------------------------------
# Handlers


async def health_live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def health_ready(request: web.Request) -> web.Response:
    reason = await request.app[READINESS_KEY].check()
    if reason is None:
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable", "reason": reason}, status=503)


def _metrics_response(metrics: Metrics) -> web.Response:
    body, content_type = metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type  # carries its own "; version=…" parameter
    return response


async def metrics_main(request: web.Request) -> web.Response:
    """/metrics on :9000, for trusted-network clients only; 404 to anybody else (THREATS 9)."""
    peer = _peer(request)
    if not metrics_allowed(peer, request.headers.get("X-Forwarded-For"),
                           request.app[CONFIG_KEY].trusted_proxy_cidrs):
        raise web.HTTPNotFound()
    return _metrics_response(request.app[METRICS_KEY])


def _peer(request: web.Request) -> str | None:
    """The socket peer address: never a header."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    return peer[0] if isinstance(peer, tuple) else None


def _static_file(roots: tuple[Path, ...], rel: str) -> Path | None:
    """The first root holding ``rel`` (like Django's AppDirectoriesFinder), refusing any escape."""
    if not rel or "\\" in rel or "\x00" in rel or rel.startswith("/"):
        return None
    parts = PurePosixPath(rel).parts
    if any(part in ("..", ".") or part.startswith(".") for part in parts):
        return None
    for root in roots:
        candidate = root.joinpath(*parts)
        if candidate.is_file():
            resolved = candidate.resolve()
            if resolved.is_relative_to(root):
                return resolved
    return None


async def static(request: web.Request) -> web.StreamResponse:
    path = _static_file(request.app[STATIC_ROOTS_KEY], request.match_info["path"])
    if path is None:
        raise web.HTTPNotFound()
    # FileResponse answers If-None-Match / If-Modified-Since / Range itself.
    return web.FileResponse(path, headers={"Cache-Control": STATIC_CACHE_CONTROL})


def static_roots() -> tuple[Path, ...]:
    """Every installed Django app's static/ directory, in INSTALLED_APPS order (admin, DRF, core.web…)."""
    from django.apps import apps

    roots = []
    for app_config in apps.get_app_configs():
        root = Path(app_config.path) / "static"
        if root.is_dir():
            roots.append(root.resolve())
    return tuple(roots)


# ---------------------------------------------------------------------------------------------------
# Middleware: one access line and one metrics observation per request


def _access_middleware(metrics: Metrics):
    @web.middleware
    async def access(request: web.Request, handler):
        started = time.perf_counter()
        peer = _peer(request)  # now: the transport is gone once the answer is sent
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away before the answer (nginx's convention)
            raise
        finally:
            elapsed = time.perf_counter() - started
            dest = DEST_CORE if request.get(SERVED_BY_CORE) else DEST_EMBEDDED_OUTPOST
            metrics.observe(request.path, request.method, status, elapsed, dest)
            ACCESS_LOGGER.info("request", extra={
                "method": request.method,
                "path": request.path,  # never the query string: it may carry tokens
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "client": peer,
                "host": request.headers.get("Host", ""),
                "user_agent": request.headers.get("User-Agent", ""),
            })

    return access


@web.middleware
async def _served_by_core(request: web.Request, handler):
    """The innermost middleware: marks a request that the core answers (its own routes or Django), for the
    access line's ``dest`` and the embedded outpost's metrics. A request the embedded outpost answers never gets
    here (its proxy-mode middleware answers first) or is under /outpost.goauthentik.io/ (authentik's split)."""
    path = request.path
    if not (path == OUTPOST_PREFIX or path.startswith(OUTPOST_PREFIX + "/")):
        request[SERVED_BY_CORE] = True
    return await handler(request)


# ---------------------------------------------------------------------------------------------------
# Factories


def _run_hooks(app: web.Application, config: CoreConfig) -> list[str]:
    """Let the websocket hub and the embedded outpost add their routes (before the Django catch-all)."""
    ran = []
    for module_name, function, with_config in HOOKS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                LOGGER.debug("hook not installed", extra={"hook": module_name})
                continue
            raise
        setup: Callable = getattr(module, function)
        setup(app, config) if with_config else setup(app)
        LOGGER.debug("component added", extra={"component": module_name})
        ran.append(module_name)
    return ran


def create_app(config: CoreConfig, asgi_app=None, hooks: bool = True) -> web.Application:
    """The main application (:9000 / :9443).

    Route order: health, metrics, static, then whatever the hooks register (outpost websocket,
    embedded outpost), then the catch-all to Django: through its WSGI handler on a pool of
    AUTHENTIK_WEB__THREADS threads (core/wsgi.py), or through ``asgi_app`` when one is given.
    """

    metrics = Metrics(engine=engine_metrics().registry)
    app = web.Application(middlewares=[_access_middleware(metrics)], handler_args={"max_field_size": 16384})
    app[CONFIG_KEY] = config
    app[METRICS_KEY] = metrics
    app[REGISTRY_KEY] = metrics.registry  # the outpost hub and the embedded outpost add their metrics to it
    app[STATIC_ROOTS_KEY] = static_roots()

    async def readiness_ctx(app: web.Application):
        app[READINESS_KEY] = Readiness()
        yield
        await asyncio.get_running_loop().run_in_executor(None, app[READINESS_KEY].close)

    app.cleanup_ctx.append(readiness_ctx)

    router = app.router
    for path in (HEALTH_LIVE, HEALTH_LIVE.rstrip("/")):
        router.add_get(path, health_live)
    for path in (HEALTH_READY, HEALTH_READY.rstrip("/")):
        router.add_get(path, health_ready)
    router.add_get("/metrics", metrics_main)
    router.add_get("/metrics/", metrics_main)
    router.add_get(STATIC_PREFIX + "{path:.+}", static)
    if hooks:
        _run_hooks(app, config)
    app.middlewares.append(_served_by_core)  # after the hooks' middlewares: innermost
    if asgi_app is not None:
        from core.asgi import django_handler

        router.add_route("*", "/{tail:.*}", django_handler(asgi_app))
        return app
    from core.wsgi import wsgi_handler

    handler, pool = wsgi_handler(config.web_threads, config.trusted_proxy_cidrs)

    async def pool_ctx(app: web.Application):
        yield
        await asyncio.get_running_loop().run_in_executor(None, _close_pool, pool, config.web_threads)

    app.cleanup_ctx.append(pool_ctx)
    router.add_route("*", "/{tail:.*}", handler)
    return app


def _close_pool(pool: ThreadPoolExecutor, threads: int) -> None:
    """Close each pool thread's database connections, then the pool."""
    from django.db import connections

    barrier = threading.Barrier(threads, timeout=5)

    def close_mine() -> None:
        connections.close_all()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # keeps this thread busy so every thread gets one call

    futures = [pool.submit(close_mine) for _ in range(threads)]
    for future in futures:
        with contextlib.suppress(Exception):
            future.result(timeout=10)
    pool.shutdown(wait=False, cancel_futures=True)


def create_metrics_app(metrics: Metrics) -> web.Application:
    """The metrics listener (:9300): /metrics for anybody who can reach the port, nothing else."""

    async def metrics_handler(request: web.Request) -> web.Response:
        return _metrics_response(metrics)

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/metrics/", metrics_handler)
    app.router.add_get(HEALTH_LIVE, health_live)
    return app


# ---------------------------------------------------------------------------------------------------
# Running


class StartupError(RuntimeError):
    """A start-up problem with a message fit for the operator (names the variable to fix)."""


def _display_host(listen: ListenAddress) -> str:
    host = "localhost" if listen.host in ("0.0.0.0", "::", "") else listen.host  # noqa: S104
    return f"[{host}]" if ":" in host else host


def initial_setup_url(config: CoreConfig) -> str:
    from core.accounts.bootstrap import INITIAL_SETUP_PATH

    return f"http://{_display_host(config.listen_http)}:{config.listen_http.port}{INITIAL_SETUP_PATH}"


def _prepare_sync(migrate: bool) -> tuple[list[str], bool]:
    """Migrate, blueprints, bootstrap; and load the URLconf so a broken import stops the start."""
    from django.db import connections
    from django.urls import get_resolver

    from core.accounts.bootstrap import admin_exists
    from core.startup import prepare

    try:
        lines = prepare(migrate=migrate)
        has_admin = admin_exists()
        get_resolver().url_patterns  # noqa: B018 - imports every view now, not on the first request
    finally:
        connections.close_all()
    return lines, has_admin


def _host_notes_sync(config: CoreConfig) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """The known host names and the start-up notes about them (reads the Base URL system setting)."""
    from django.db import connections

    from core.hosts import answered_hosts, startup_notes
    from core.system.base_url import stored
    from core.web.hosts import known_static

    try:
        setting = stored()
    finally:
        connections.close_all()
    static = known_static(config)
    return answered_hosts(static, setting), startup_notes(static, setting, config.base_url)


def _start_debugger(config: CoreConfig) -> None:
    """debugpy runs whatever code a client sends: it listens where AUTHENTIK_LISTEN__DEBUG_PY says (loopback
    unless told otherwise, authentik's own fallback), and the log says where."""
    if not config.debugger:
        return
    try:
        import debugpy
    except ImportError:
        LOGGER.warning("AUTHENTIK_DEBUGGER=true but debugpy is not installed: in the checkout run "
                       "pip install -e '.[debug]'")
        return
    listen = config.listen_debug_py
    try:
        debugpy.listen((listen.host, listen.port))
    except (OSError, RuntimeError) as exc:
        raise StartupError(f"cannot start the debugger on AUTHENTIK_LISTEN__DEBUG_PY={listen}: {exc}; set "
                           "AUTHENTIK_LISTEN__DEBUG_PY to a free host:port or AUTHENTIK_DEBUGGER=false") from None
    LOGGER.warning("debugger listening: anyone who reaches this address can run code in the server",
                   extra={"address": str(listen), "variable": "AUTHENTIK_LISTEN__DEBUG_PY"})


def config_summary(config: CoreConfig) -> dict:
    """The configuration in effect, for the debug log: an allow-list of fields, so no secret can slip in (the
    secret key, database/Redis/SMTP passwords and bootstrap credentials are never named here)."""
    pg, redis, email = config.postgresql, config.redis, config.email
    return {
        "data_dir": str(config.data_dir), "log_level": config.log_level,
        "database": f"postgresql {pg.user}@{pg.host}:{pg.port}/{pg.name} sslmode={pg.sslmode}" if pg else "sqlite",
        "cache": f"redis {redis.host}:{redis.port}/{redis.db}" if redis else "memory",
        "email": f"smtp {email.host}:{email.port}" if email else "console",
        "trusted_proxy_cidrs": [str(net) for net in config.trusted_proxy_cidrs],
        "session_lifetime_s": config.session_lifetime, "blueprints_dir": str(config.blueprints_dir),
        "web_threads": config.web_threads, "debug": config.debug, "debugger": config.debugger,
        "bootstrap": bool(config.bootstrap.password or config.bootstrap.token),
    }


async def _start_site(site: web.BaseSite, variable: str, listen: ListenAddress) -> None:
    try:
        await site.start()
    except OSError as exc:
        raise StartupError(f"cannot listen on {variable}={listen}: {exc.strerror or exc}; "
                           f"free the port or set {variable} to another host:port") from None


async def serve(config: CoreConfig, prepare: bool = True, migrate: bool = True,
                stop: asyncio.Event | None = None) -> None:
    """Prepare the database, bind the three listeners, serve until ``stop`` is set (or a signal)."""
    from protocols import tls

    started = time.monotonic()
    loop = asyncio.get_running_loop()
    LOGGER.debug("configuration", extra=config_summary(config))
    _start_debugger(config)
    if prepare:
        lines, has_admin = await loop.run_in_executor(None, _prepare_sync, migrate)
        for line in lines:
            if not (line.startswith("no administrator") and not has_admin):
                LOGGER.info(line)
        if not has_admin:
            LOGGER.info(f"no administrator yet: open {initial_setup_url(config)} to create one")
    hosts, notes = await loop.run_in_executor(None, _host_notes_sync, config)
    for level, note in notes:
        LOGGER.log(logging.getLevelName(level.upper()), note, extra={"hosts": list(hosts)})
    pem = await loop.run_in_executor(None, tls.ensure_certificate, config.data_dir / "certs")
    ssl_context = tls.server_context(pem)

    app = create_app(config)
    metrics_app = create_metrics_app(app[METRICS_KEY])
    # access_log=None: the access middleware writes the one structured line per request.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10)
    metrics_runner = web.AppRunner(metrics_app, access_log=None, handle_signals=False)
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await runner.setup()
    await metrics_runner.setup()
    from core.mail.delivery import Sender

    mail_sender = Sender()
    try:
        await _start_site(web.TCPSite(runner, config.listen_http.host, config.listen_http.port),
                          "AUTHENTIK_LISTEN__HTTP", config.listen_http)
        await _start_site(web.TCPSite(runner, config.listen_https.host, config.listen_https.port,
                                      ssl_context=ssl_context),
                          "AUTHENTIK_LISTEN__HTTPS", config.listen_https)
        await _start_site(web.TCPSite(metrics_runner, config.listen_metrics.host, config.listen_metrics.port),
                          "AUTHENTIK_LISTEN__METRICS", config.listen_metrics)
        mail_sender.start()  # queued mail goes out without `ak worker` too (core/mail/delivery.py)
        LOGGER.info("listening", extra={
            "http": str(config.listen_http), "https": str(config.listen_https),
            "metrics": str(config.listen_metrics), "database": config.database_label,
            "data_dir": str(config.data_dir),
            "cache": "redis" if config.redis else "memory",
            "startup_ms": round((time.monotonic() - started) * 1000)})
        await stop.wait()
        LOGGER.info("shutting down")
        loop.call_later(SLOW_SHUTDOWN_S, _log_pending_tasks)
    finally:
        await loop.run_in_executor(None, mail_sender.stop)
        await metrics_runner.cleanup()
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


SLOW_SHUTDOWN_S = 20.0  # past this, the log names what the shutdown still waits for


def _log_pending_tasks() -> None:
    """A stop that takes this long waits on a task that did not end when cancelled: name each with where it
    waits, so the log says what holds the process up."""
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=1)
        where = f"{frames[0].f_code.co_filename}:{frames[0].f_lineno}" if frames else "?"
        LOGGER.warning("shutdown still waiting", extra={"task": task.get_name(), "at": where})


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is a dependency; a plain loop still works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _services_problem(config: CoreConfig, prepare: bool, wait: float) -> str | None:
    """Before serving: Redis (always: the session store and the outpost fan-out need it) and, when preparing,
    the database answer within ``wait`` seconds; with --no-prepare, a reachable database made with another
    secret key still stops the start."""
    from core import lifecycle

    problem = lifecycle.wait_for_services(config, wait, database=prepare,
                                          announce=lambda line: LOGGER.warning(line))
    if problem or prepare:
        return problem
    from django.conf import settings

    from core.crypto import key_check

    if lifecycle.database_problem() is None and key_check.matches(settings.SECRET_KEY) is False:
        return key_check.mismatch_message(lifecycle.database_target(config))
    return None


MMAP_THRESHOLD = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD
M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)


def return_large_allocations() -> bool:
    """Make glibc serve every allocation above 128 KiB with its own mmap, given back when freed.

    By default glibc raises that threshold to the size of each large block freed, up to 32 MiB: after the first
    argon2 hash (19 MiB of working memory) every hash's memory comes from a thread's heap arena and stays there,
    ~18 MB of RSS per thread that ever hashed (bench/core_login.py: idle 148 -> 130 MB). Setting the threshold
    fixes it (mallopt(3): an explicit value turns the dynamic adjustment off). False where there is no glibc."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def run(config: CoreConfig, prepare: bool = True, migrate: bool = True, wait: float | None = None) -> int:
    """Run the server in this thread until SIGTERM/SIGINT; returns the process exit code.

    ``wait``: how long Redis and the database may take to answer at start (default 30 s, as authentik)."""
    from django.db import DatabaseError

    return_large_allocations()

    from core.crypto.key_check import SecretKeyMismatch
    from core.lifecycle import SERVICE_WAIT_S, database_target

    problem = _services_problem(config, prepare, SERVICE_WAIT_S if wait is None else wait)
    if problem:
        print(f"gatehouse: {problem}", file=sys.stderr)
        return 1
    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(serve(config, prepare=prepare, migrate=migrate))
    except (StartupError, SecretKeyMismatch) as exc:
        print(f"gatehouse: {exc}", file=sys.stderr)
        return 1
    except DatabaseError as exc:
        print(f"gatehouse: cannot prepare the database ({database_target(config)}): {exc}".rstrip(),
              file=sys.stderr)
        return 1
    return 0
