"""The client address of a request, trusting forwarded headers only from configured proxy networks.

THREATS 3: an unparsable X-Forwarded-For makes the request untrusted (we fall back to the socket
peer and flag it); it never skips a policy. An outpost may delegate the end user's address with
X-authentik-remote-ip, which counts only with a valid outpost token (reference §1.7).
"""

from __future__ import annotations

from django.conf import settings

from protocols.trust import ClientAddress, resolve

__all__ = ["ClientAddress", "client_address", "client_ip", "vouched_by"]


def client_address(request) -> ClientAddress:
    """The walk itself is protocols/trust.py ``resolve``, over the configured trusted proxy networks."""
    return resolve(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"),
                   settings.CONFIG.trusted_proxy_cidrs)


def client_ip(request) -> str:
    """For Django requests (outpost delegation is applied by the flow executor, which checks the token)."""
    return client_address(request).ip


def vouched_by(request, ip: str) -> str:
    """Who vouched for ``ip`` as this request's client: the trusted proxy whose X-Forwarded-For named it,
    the outpost that delegated it (``ip`` differs from the resolved address), or "" for the socket peer.
    The login rate limit caps how many addresses one voucher may name (core/policies/reputation.py)."""
    resolved = client_address(request)
    if ip != resolved.ip:
        return resolved.ip
    return resolved.via
