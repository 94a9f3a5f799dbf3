"""The RADIUS outpost's Prometheus metrics. Label values come from fixed sets (codes, methods, results), never
from what a client sends (THREATS 9)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from outpost.metrics import GO_BUCKETS

CODES = frozenset(("access-request", "accounting-request", "status-server"))
METHODS = frozenset(("pap", "chap", "mschap", "mschapv2", "eap", "none"))
DECODE_REASONS = frozenset(("length", "attribute", "code", "authenticator", "message_authenticator",
                            "message_authenticator_missing", "password"))


def drop_reason(reason: str) -> str:
    """A bounded label for why a datagram got no answer (the handler's reason text starts with it)."""
    if reason.startswith("unknown client"):
        return "unknown_client"
    if reason.startswith("duplicate"):
        return "duplicate_in_flight"
    if reason.startswith(("accounting", "core")):
        return "core"
    if "listener" in reason:
        return "wrong_listener"
    head = reason.split(":", 1)[0]
    return head if head in DECODE_REASONS else "other"


class RadiusMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "gatehouse_outpost_radius_requests", "RADIUS datagrams by request code, method and result "
            "(result: accept, reject, answered, duplicate, dropped, error)",
            ("code", "method", "result"), registry=registry)
        self.duration = Histogram(
            "gatehouse_outpost_radius_request_duration_seconds", "Time from a datagram to its reply (or drop)",
            ("code", "method"), registry=registry, buckets=GO_BUCKETS)
        self.dropped = Counter(
            "gatehouse_outpost_radius_dropped", "RADIUS datagrams given no answer, by reason (unknown_client, "
            "length, attribute, code, authenticator, message_authenticator, message_authenticator_missing, "
            "password, wrong_listener, duplicate_in_flight, core, other)", ("reason",), registry=registry)

    def observe(self, code: str, method: str, result: str, seconds: float, reason: str = "") -> None:
        code = code if code in CODES else "unknown"
        method = method if method in METHODS else "none"
        self.requests.labels(code, method, result).inc()
        self.duration.labels(code, method).observe(seconds)
        if result == "dropped":
            self.dropped.labels(drop_reason(reason)).inc()
