"""An outpost's Prometheus metrics, with authentik's names, types, labels and units, so that dashboards and alerts
written for authentik's outposts keep working: ``internal/outpost/ak/metrics.go`` (info, last update, connection)
and ``internal/outpost/proxyv2/metrics/metrics.go`` (request, upstream and session store timings).

Each aiohttp app owns one CollectorRegistry under ``REGISTRY_KEY`` (DESIGN §4.4: no process-global registry):
the standalone outpost's, or the core's front app for the embedded outpost (authentik's embedded outpost reports
on the core's :9300 too).

Labels stay bounded whatever clients send (THREATS 9): ``host`` is the external host of a configured application,
never a raw ``Host`` / ``X-Forwarded-Host`` value (authentik labels the raw header, so a client could add one
series per request), and a request for no application is not observed (as authentik's ``Handle`` does).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import TraceConfig, web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from protocols.forward import PING_PATH

REGISTRY_KEY = web.AppKey("metrics_registry", CollectorRegistry)
HEALTH_PREFIX = "/-/health/"
# Set by the core's front (core/server.py) on a request its Django catch-all or its own routes answered, so the
# embedded outpost's middleware observes only what the outpost served (authentik: ``dest`` embedded_outpost).
SERVED_BY_CORE = web.RequestKey("served_by_core", bool)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# client_golang's DefBuckets: authentik's Go histograms (the router's and the outposts') use them.
GO_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_TIMEOUT = 15.0  # seconds: outpost.proxy.setup()'s own client has the same total timeout


def registry_of(app: web.Application) -> CollectorRegistry:
    """The app's registry, made on first use."""
    registry = app.get(REGISTRY_KEY)
    if registry is None:
        registry = app[REGISTRY_KEY] = CollectorRegistry(auto_describe=True)
    return registry


class LinkCollector:
    """``authentik_outpost_info``, ``authentik_outpost_last_update`` (unix time of the last configuration fetch)
    and ``authentik_outpost_connection`` (1 while the websocket to the core is up), read from the CoreLink at
    scrape time, plus our ``gatehouse_outpost_config_generation``. ``uuid`` is the instance's uuid (the one
    it sends the core, ``uid`` in the core's ``authentik_outposts_connected``), as authentik's."""

    def __init__(self, link: Any, kind: str, version: str, build: str = ""):
        self.link, self.kind, self.version, self.build = link, kind, version, build

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        info_labels = ("outpost_name", "outpost_type", "uuid", "version", "build")
        return (GaugeMetricFamily("authentik_outpost_info", "Outpost info", labels=info_labels),
                GaugeMetricFamily("authentik_outpost_last_update", "Time of last update", labels=info_labels),
                GaugeMetricFamily("authentik_outpost_connection", "Connection status",
                                  labels=("outpost_name", "outpost_type", "uuid")),
                GaugeMetricFamily("gatehouse_outpost_config_generation", "configurations fetched since start"))

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info, last, connection, generation = self._families()
        snapshot = self.link.snapshot
        name = snapshot.name if snapshot is not None else ""
        uuid = str(getattr(self.link, "instance_uuid", ""))  # authentik: this instance's uuid, not the outpost's
        if snapshot is not None:
            info.add_metric((name, self.kind, uuid, self.version, self.build), 1.0)
            generation.add_metric((), float(snapshot.generation))
        else:
            generation.add_metric((), 0.0)
        refreshed = getattr(self.link, "refreshed_at", None)
        if snapshot is not None and refreshed:
            last.add_metric((name, self.kind, uuid, self.version, self.build), refreshed)
        connection.add_metric((name, self.kind, uuid), 1.0 if self.link.connected else 0.0)
        yield from (info, last, connection, generation)


def method_label(method: str) -> str:
    """A request method as a label: the standard ones, else ``other`` (clients may send any token)."""
    return method if method in METHODS else "other"


class ProxyMetrics:
    """The proxy outpost's histograms and counters (authentik's proxyv2/metrics). ``outpost_name()`` is read at
    observation time (the name comes with the configuration). Labelled children are kept (label sets are
    bounded), which halves the cost of an observation on the forward-auth path."""

    def __init__(self, registry: CollectorRegistry, outpost_name: Callable[[], str]):
        self.outpost_name = outpost_name
        self._children: dict[tuple, Any] = {}
        self.requests = Histogram(
            "authentik_outpost_proxy_request_duration_seconds", "Proxy request latencies in seconds",
            ("outpost_name", "method", "host", "type"), registry=registry, buckets=GO_BUCKETS)
        self.upstream = Histogram(
            "authentik_outpost_proxy_upstream_response_duration_seconds",
            "Proxy upstream response latencies in seconds",
            ("outpost_name", "method", "scheme", "host", "upstream_host"), registry=registry, buckets=GO_BUCKETS)
        self.session_operations = Counter(
            "authentik_outpost_proxy_session_operations", "Total number of session store operations",
            ("outpost_name", "operation", "backend"), registry=registry)
        self.session_duration = Histogram(
            "authentik_outpost_proxy_session_operation_duration_seconds",
            "Session store operation latencies in seconds",
            ("outpost_name", "operation", "backend"), registry=registry, buckets=GO_BUCKETS)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, method: str, host: str, kind: str, seconds: float) -> None:
        self._child(self.requests, self.outpost_name(), method_label(method), host, kind).observe(seconds)

    def upstream_response(self, method: str, scheme: str, host: str, upstream_host: str, seconds: float) -> None:
        self._child(self.upstream, self.outpost_name(), method_label(method), scheme, host,
                    upstream_host).observe(seconds)

    def session_operation(self, operation: str, backend: str, seconds: float) -> None:
        key = (self.outpost_name(), operation, backend)
        pair = self._children.get(key)
        if pair is None:
            pair = self._children[key] = (self.session_operations.labels(*key), self.session_duration.labels(*key))
        pair[0].inc()
        pair[1].observe(seconds)


# ---------------------------------------------------------------------------------------------------
# Requests


def app_host(outpost: Any, request: web.Request) -> str | None:
    """The external host (``host[:port]``) of the application a request is for, or None.

    Tried in authentik's order (``web.GetHost``: X-Forwarded-Host, then Host), with nginx's X-Original-URL in
    between; only a configured application's host is returned, so the label set is bounded by the configuration.
    This only names a series: the handlers decide on trusted headers only."""
    if outpost is None:
        return None
    headers = request.headers
    candidates = [headers.get("X-Forwarded-Host"), headers.get("X-Original-URL"), request.host]
    if candidates[1]:  # scheme://host[:port]/path -> host[:port]
        candidates[1] = candidates[1].partition("://")[2].partition("/")[0]
    for candidate in candidates:
        if not candidate:
            continue
        for scheme in ("https", "http"):
            try:
                return external_netloc(outpost.apps.lookup(candidate, scheme).external_host)
            except LookupError:
                continue
    return None


@functools.lru_cache(maxsize=1024)
def external_netloc(external_host: str) -> str:
    """``host[:port]`` of a configured external host (configuration values only: the cache stays small)."""
    return urlsplit(external_host).netloc


def request_kind(path: str) -> str:
    """authentik's ``type`` label: ``ping`` for the health endpoints, ``app`` for what an application served."""
    return "ping" if path == PING_PATH or path.startswith(HEALTH_PREFIX) else "app"


def requests_middleware(metrics: ProxyMetrics, outpost: Callable[[], Any]):
    """Observe ``authentik_outpost_proxy_request_duration_seconds`` for every request the outpost served
    (not those the core's front marked SERVED_BY_CORE; not requests for no application)."""

    @web.middleware
    async def observe(request: web.Request, handler):
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            if not request.get(SERVED_BY_CORE):
                kind = request_kind(request.path)
                host = "" if kind == "ping" else app_host(outpost(), request)
                if host is not None:
                    metrics.request(request.method, host, kind, time.perf_counter() - started)

    return observe


def upstream_trace(metrics: ProxyMetrics, outpost: Callable[[], Any]) -> TraceConfig:
    """aiohttp client tracing for the proxy mode's upstream requests: the time from sending the request to the
    upstream's response headers, as ``authentik_outpost_proxy_upstream_response_duration_seconds``.

    The outpost's HTTP client also calls the core (token, JWKS); only requests carrying the X-Forwarded-Host
    that proxy mode sets (outpost/proxy/upstream.py) of a configured application are upstream requests."""
    trace = TraceConfig()

    async def start(session, ctx, params) -> None:
        ctx.started = time.perf_counter()

    async def end(session, ctx, params) -> None:
        forwarded = params.headers.get("X-Forwarded-Host")
        started = getattr(ctx, "started", None)
        current = outpost()
        if not forwarded or started is None or current is None:
            return
        for scheme in ("https", "http"):
            try:
                app = current.apps.lookup(forwarded, scheme)
            except LookupError:
                continue
            url = params.url  # host[:port] only: never the userinfo of an upstream URL
            metrics.upstream_response(params.method, url.scheme, external_netloc(app.external_host),
                                      url.host_port_subcomponent or "", time.perf_counter() - started)
            return

    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    return trace


# ---------------------------------------------------------------------------------------------------
# Session store


class MeteredStore:
    """A SessionStore that counts and times each operation (``load``, ``save``, ``delete``: authentik's names)
    under ``backend`` (``memory`` or ``redis``); anything else goes to the store itself."""

    def __init__(self, store: Any, metrics: ProxyMetrics, backend: str):
        self._store, self._metrics, self._backend = store, metrics, backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __len__(self) -> int:
        return len(self._store)

    async def _timed(self, operation: str, method: Callable[..., Any], argument: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(argument)
        finally:
            self._metrics.session_operation(operation, self._backend, time.perf_counter() - started)

    def get(self, session_id: str):
        return self._timed("load", self._store.get, session_id)

    def put(self, session: Any):
        return self._timed("save", self._store.put, session)

    def delete(self, session_id: str):
        return self._timed("delete", self._store.delete, session_id)

    def delete_by_sid(self, sid: str):
        return self._timed("delete", self._store.delete_by_sid, sid)

    def delete_by_sub(self, sub: str):
        return self._timed("delete", self._store.delete_by_sub, sub)


def store_backend(store: Any) -> str:
    from outpost.proxy.session import RedisStore

    return "redis" if isinstance(store, RedisStore) else "memory"


def instrument_proxy(app: web.Application, link: Any, store: Any, timeout: float = HTTP_TIMEOUT,
                     ) -> tuple[MeteredStore, Callable[[], aiohttp.ClientSession]]:
    """Wire a proxy outpost's metrics into ``app`` (standalone or embedded): the request middleware is appended
    now (before the outpost's own), and the metered store and the traced HTTP client factory are returned for
    ``outpost.proxy.setup(store=..., http_factory=...)``."""
    from outpost.proxy.forward_auth import OUTPOST_KEY

    def outpost() -> Any:  # set by outpost.proxy.setup()
        return app.get(OUTPOST_KEY)

    metrics = ProxyMetrics(registry_of(app), lambda: link.snapshot.name if link.snapshot else "")
    app.middlewares.append(requests_middleware(metrics, outpost))
    trace = upstream_trace(metrics, outpost)

    def http_factory(connector: aiohttp.BaseConnector | None = None) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), trace_configs=[trace],
                                     connector=connector)

    return MeteredStore(store, metrics, store_backend(store)), http_factory
