"""The LDAP outpost's Prometheus metrics: authentik's names (``internal/outpost/ldap/metrics/metrics.go``:
``authentik_outpost_ldap_requests`` histogram of seconds by outpost_name/type/app, and
``authentik_outpost_ldap_requests_rejected`` by reason) plus ours, ``gatehouse_outpost_ldap_operations_total``
by operation and result code. Labels are bounded: ``type`` is one of our operation names, ``app`` a configured
provider's application slug (or ""), ``code`` an LDAP result code we send."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from outpost.metrics import GO_BUCKETS

REJECTED = {49: "invalid_credentials", 50: "access_denied", 13: "confidentiality_required", 1: "flow_error",
            53: "unwilling_to_perform", 2: "protocol_error", 4: "size_limit", 32: "no_such_object"}


class LDAPMetrics:
    def __init__(self, registry: CollectorRegistry, outpost_name: Callable[[], str]):
        self.outpost_name = outpost_name
        self.requests = Histogram("authentik_outpost_ldap_requests", "The total number of LDAP requests",
                                  ("outpost_name", "type", "app"), registry=registry, buckets=GO_BUCKETS)
        self.rejected = Counter("authentik_outpost_ldap_requests_rejected", "Total number of rejected requests",
                                ("outpost_name", "type", "reason", "app"), registry=registry)
        self.operations = Counter("gatehouse_outpost_ldap_operations", "LDAP operations by result code",
                                  ("type", "code"), registry=registry)
        # the labelled children by their labels (bounded as the labels are): ``labels()`` checks and locks on
        # each call, a few µs an operation
        self._requests: dict[tuple, object] = {}
        self._operations: dict[tuple, object] = {}

    def observe(self, op: str, code: int, seconds: float, app: str) -> None:
        name = self.outpost_name()
        key = (name, op, app)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(name, op, app)
        child.observe(seconds)
        counter = self._operations.get((op, code))
        if counter is None:
            counter = self._operations[(op, code)] = self.operations.labels(op, str(code))
        counter.inc()
        if code not in (0, 5, 6):  # compareFalse/compareTrue are answers, not rejections
            self.rejected.labels(name, op, REJECTED.get(code, "other"), app).inc()
