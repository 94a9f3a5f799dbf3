"""The RADIUS outpost's Prometheus metrics. Label values come from fixed sets (codes, methods, results), never
from what a client sends (THREATS 9)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from outpost.metrics import GO_BUCKETS

CODES = frozenset(("access-request", "accounting-request", "status-server"))
METHODS = frozenset(("pap", "chap", "mschap", "mschapv2", "eap", "none"))


class RadiusMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "gatehouse_outpost_radius_requests", "RADIUS datagrams by request code, method and result "
            "(result: accept, reject, answered, duplicate, dropped, error)",
            ("code", "method", "result"), registry=registry)
        self.duration = Histogram(
            "gatehouse_outpost_radius_request_duration_seconds", "Time from a datagram to its reply (or drop)",
            ("code", "method"), registry=registry, buckets=GO_BUCKETS)

    def observe(self, code: str, method: str, result: str, seconds: float) -> None:
        code = code if code in CODES else "unknown"
        method = method if method in METHODS else "none"
        self.requests.labels(code, method, result).inc()
        self.duration.labels(code, method).observe(seconds)
