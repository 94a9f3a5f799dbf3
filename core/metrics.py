"""Prometheus metrics of the core's front process, and who may read them on the main listener.

Each app owns its own CollectorRegistry (no process-global registry), so tests can build many apps.
THREATS 9: metrics are served on their own listener; on :9000 only to clients inside the trusted
proxy networks (so a Prometheus container on the same private network can scrape server:9000), and the
decision is made on the resolved client address, never on User-Agent or any other header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from core.client_ip import resolve

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# (prefix, class): the first match wins; a bounded label set, whatever paths clients send.
ROUTE_CLASSES = (
    ("/-/health/", "health"),
    ("/metrics", "metrics"),
    ("/static/", "static"),
    ("/ws/", "websocket"),
    ("/outpost.goauthentik.io/", "outpost"),
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


class Metrics:
    """Request counts and latency by route class, plus process metrics, in one registry."""

    def __init__(self) -> None:
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

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        route = route_class(path)
        self.requests.labels(route, method if method in METHODS else "other", str(status)).inc()
        self.duration.labels(route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_allowed(peer: str | None, forwarded_for: str | None,
                    networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """May this client read /metrics on the main listener?

    Yes only when the client, resolved from the socket peer and X-Forwarded-For through trusted
    proxies (core/client_ip.py), is itself inside the trusted networks. A request relayed by a trusted
    reverse proxy for an outside client is refused; an unparsable address is refused (fail closed).
    """
    networks = tuple(networks)
    if not peer:
        return False
    client = resolve(peer, forwarded_for, networks)
    if not client.trusted:
        return False
    try:
        address = ipaddress.ip_address(client.ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in networks)
