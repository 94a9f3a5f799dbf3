"""The client address of a request, trusting forwarded headers only from configured proxy networks.

THREATS 3: an unparsable X-Forwarded-For makes the request untrusted (we fall back to the socket
peer and flag it); it never skips a policy. An outpost may delegate the end user's address with
X-authentik-remote-ip, which counts only with a valid outpost token (reference §1.7).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ClientAddress:
    ip: str
    trusted: bool  # False when a forwarded header was present but unusable
    via: str = ""  # the trusted hop that vouched for ``ip`` (its right neighbour); "" when ip is the socket peer


def _in(networks, ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)


def resolve(remote_addr: str, forwarded_for: str | None, networks=None) -> ClientAddress:
    """Walk X-Forwarded-For from the right, skipping trusted proxies; the first other hop is the client."""
    networks = settings.CONFIG.trusted_proxy_cidrs if networks is None else networks
    try:
        ipaddress.ip_address(remote_addr)
    except ValueError:
        return ClientAddress("255.255.255.255", False)
    if not forwarded_for or not _in(networks, remote_addr):
        return ClientAddress(remote_addr, True)
    hops = [h.strip() for h in forwarded_for.split(",")]
    vouching = remote_addr
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return ClientAddress(remote_addr, False)
        if not _in(networks, hop):
            return ClientAddress(hop, True, vouching)
        vouching = hop
    return ClientAddress(hops[0], True, remote_addr if len(hops) == 1 else hops[1])


def client_address(request) -> ClientAddress:
    return resolve(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))


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
