"""Prometheus metrics of the core, and who may read them on the main listener.

authentik's names, types, labels and units beside our ``gatehouse_*`` ones, so that dashboards and alerts written
for authentik keep working (README "Metrics" lists them):

* ``Metrics``: the front process (``internal/web/metrics.go``): ``authentik_main_request_duration_seconds``
  by ``dest`` (core or embedded_outpost). Each app owns its own CollectorRegistry (no process-global registry,
  so tests can build many apps); the outpost websocket hub and the embedded outpost add theirs to it
  (``outpost.metrics.REGISTRY_KEY``).
* ``EngineMetrics``: the flow planner, the flow executor's stages and the policy engine
  (``authentik/flows/apps.py``, ``authentik/policies/apps.py``), observed in Django's request threads. One per
  process, on the ``authentik_policies`` app config (``engine_metrics()``), like the outpost Publisher.
* ``OutpostLinkMetrics``: ``authentik_outposts_connected`` / ``_last_update`` (``authentik/outposts/apps.py``),
  kept by the websocket endpoint.

THREATS 9: metrics are served on their own listener; on :9000 only to clients inside the trusted
proxy networks (so a Prometheus container on the same private network can scrape server:9000), and the
decision is made on the resolved client address, never on User-Agent or any other header.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from outpost.metrics import GO_BUCKETS, method_label
from protocols.forward import OUTPOST_PREFIX
from protocols.trust import client_inside

# (prefix, class): the first match wins; a bounded label set, whatever paths clients send.
ROUTE_CLASSES = (
    ("/-/health/", "health"),
    ("/metrics", "metrics"),
    ("/static/", "static"),
    ("/ws/", "websocket"),
    (OUTPOST_PREFIX + "/", "outpost"),
    ("/api/v3/flows/executor/", "flow_executor"),
    ("/api/", "api"),
    ("/application/o/", "oidc"),
    ("/.well-known/", "oidc"),
    ("/if/admin/", "admin"),
    ("/if/", "interface"),
    ("/flows/", "flows"),
)


def route_class(path: str) -> str:
    for prefix, name in ROUTE_CLASSES:
        if path.startswith(prefix):
            return name
    return "other"


DEST_CORE, DEST_EMBEDDED_OUTPOST = "core", "embedded_outpost"
# Not requests to the core or the outpost: authentik's router answers these outside its request histogram.
UNCOUNTED_ROUTES = frozenset(("health", "metrics"))


class Metrics:
    """Request counts and latency by route class and by destination, plus process metrics, in one registry;
    ``engine``: the per-process EngineMetrics registry, rendered with it."""

    def __init__(self, engine: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "gatehouse_http_requests", "HTTP requests answered by the core's front process",
            ("route", "method", "status"), registry=self.registry)
        self.duration = Histogram(
            "gatehouse_http_request_duration_seconds", "Time to answer an HTTP request",
            ("route",), registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
        self.main = Histogram("authentik_main_request_duration_seconds", "API request latencies in seconds",
                              ("dest",), registry=self.registry, buckets=GO_BUCKETS)
        # authentik keeps this one "for compatibility" and observes it in nanoseconds (a Go time.Duration).
        self.main_legacy = Histogram("authentik_main_requests", "The total number of configured providers",
                                     ("dest",), registry=self.registry, buckets=GO_BUCKETS)
        # Both destinations exist from the start (a dashboard sees 0, not no data) and skip the label lookup.
        self._dest = {dest: (self.main.labels(dest), self.main_legacy.labels(dest))
                      for dest in (DEST_CORE, DEST_EMBEDDED_OUTPOST)}
        if engine is not None:
            self.registry.register(engine)

    def observe(self, path: str, method: str, status: int, seconds: float, dest: str = DEST_CORE) -> None:
        route = route_class(path)
        self.requests.labels(route, method_label(method), str(status)).inc()
        self.duration.labels(route).observe(seconds)
        if route not in UNCOUNTED_ROUTES:
            main, legacy = self._dest[dest]
            main.observe(seconds)
            legacy.observe(seconds * 1e9)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_allowed(peer: str | None, forwarded_for: str | None,
                    networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """May this client read /metrics on the main listener?

    Yes only when the client, resolved from the socket peer and X-Forwarded-For through trusted
    proxies (protocols/trust.py), is itself inside the trusted networks. A request relayed by a trusted
    reverse proxy for an outside client is refused; an unparsable address is refused (fail closed).
    """
    return client_inside(peer, forwarded_for, networks)


# ---------------------------------------------------------------------------------------------------
# The flow and policy engines (Django side)


@functools.cache
def class_path(cls: type) -> str:
    """authentik's ``class_to_path`` for one of our models: our app labels are authentik's
    (``authentik_providers_proxy``), so ``Application`` -> ``authentik.core.models.Application``; a class outside
    an ``authentik_*`` app keeps its own module path."""
    meta = getattr(cls, "_meta", None)
    if meta is not None and meta.app_label.startswith("authentik_"):
        return f"{meta.app_label.replace('_', '.')}.models.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def stage_type(view_cls: type) -> str:
    """authentik's stage view path (``authentik.stages.password.stage.PasswordStageView``): our stage modules
    (core/flows/stages/<kind>.py) are named after authentik's stage packages."""
    return f"authentik.stages.{view_cls.__module__.rsplit('.', 1)[-1]}.stage.{view_cls.__name__}"


class EngineMetrics:
    """The flow planner's, the stages' and the policy engine's timings, authentik's histograms (default buckets,
    seconds). Observed from request threads (prometheus_client is thread-safe); rendered by every front app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.plan_time = Histogram("authentik_flows_plan_time", "Duration to build a plan for a flow",
                                   ("flow_slug",), registry=self.registry)
        self.stage_time = Histogram("authentik_flows_execution_stage_time", "Duration each stage took to execute.",
                                    ("stage_type", "method"), registry=self.registry)
        self.engine_time = Histogram("authentik_policies_engine_time_total_seconds",
                                     "(Total) Duration the policy engine took to evaluate a result.",
                                     ("obj_type", "obj_pk"), registry=self.registry)
        self.policy_time = Histogram("authentik_policies_execution_time", "Execution times for single policies",
                                     ("binding_order", "binding_target_type", "binding_target_name", "object_pk",
                                      "object_type", "mode"), registry=self.registry)

    def planned(self, flow_slug: str, seconds: float) -> None:
        self.plan_time.labels(flow_slug).observe(seconds)

    def stage(self, view_cls: type, method: str, seconds: float) -> None:
        self.stage_time.labels(stage_type(view_cls), method.upper()).observe(seconds)

    def engine(self, target, seconds: float) -> None:
        self.engine_time.labels(class_path(type(target)), str(target.pk)).observe(seconds)

    def policy(self, binding, obj, seconds: float) -> None:
        """One policy binding's evaluation (authentik times only policy bindings: ``mode`` execute_process)."""
        self.policy_time.labels(str(binding.order), "policy", binding.policy.name,
                                str(getattr(obj, "pk", "")), class_path(type(obj)) if obj is not None else "",
                                "execute_process").observe(seconds)


def engine_metrics() -> EngineMetrics:
    """This process's EngineMetrics (made by the authentik_policies app config's ready())."""
    from django.apps import apps

    return apps.get_app_config("authentik_policies").metrics


# ---------------------------------------------------------------------------------------------------
# Outposts connected to this core process


class OutpostLinkMetrics:
    """``authentik_outposts_connected`` {outpost, uid, expected}: websockets of that instance open to this process
    (authentik: +1 on connect, -1 on disconnect); ``authentik_outposts_last_update`` {outpost, uid, version}: unix
    time of the instance's last HELLO. authentik also labels ``tenant``: always ``public`` here (one tenant).

    Unlike authentik, a disconnected instance's ``connected`` series goes away (its value would stay 0 forever,
    and every outpost restart brings a new instance uid); ``last_update`` stays, for alerts on a silent
    outpost, but only for the LAST_UPDATE_KEEP most recent instances. Used on the event loop only."""

    TENANT = "public"
    LAST_UPDATE_KEEP = 256

    def __init__(self, registry: CollectorRegistry):
        self.connected_gauge = Gauge("authentik_outposts_connected", "Currently connected outposts",
                                     ("tenant", "outpost", "uid", "expected"), registry=registry)
        self.last_update_gauge = Gauge("authentik_outposts_last_update", "Last update from any outpost",
                                       ("tenant", "outpost", "uid", "version"), registry=registry)
        self._open: dict[tuple[str, str, str], int] = {}
        self._updates: dict[tuple[str, str, str], float] = {}  # insertion order = age

    def connected(self, outpost: str, uid: str, expected: str) -> None:
        key = (outpost, uid, expected)
        self._open[key] = self._open.get(key, 0) + 1
        self.connected_gauge.labels(self.TENANT, *key).set(self._open[key])

    def disconnected(self, outpost: str, uid: str, expected: str) -> None:
        key = (outpost, uid, expected)
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
            self.connected_gauge.labels(self.TENANT, *key).set(left)
            return
        if self._open.pop(key, None) is not None:
            self.connected_gauge.remove(self.TENANT, *key)

    def hello(self, outpost: str, uid: str, version: str, now: float | None = None) -> None:
        key = (outpost, uid, version)
        self._updates.pop(key, None)
        self._updates[key] = time.time() if now is None else now
        self.last_update_gauge.labels(self.TENANT, *key).set(self._updates[key])
        while len(self._updates) > self.LAST_UPDATE_KEEP:
            oldest = next(iter(self._updates))
            del self._updates[oldest]
            self.last_update_gauge.remove(self.TENANT, *oldest)
