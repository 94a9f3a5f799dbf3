"""Which provider (and so which shared secret) a RADIUS client's datagram belongs to (THREATS 17).

Every provider's ``client_networks`` (comma-separated CIDRs) joins one table; a source address picks the
entry with the longest matching prefix over all providers, IPv4 and IPv6 alike (authentik sorts by address
width, so its choice among IPv4 matches is arbitrary; reference §4.2). Equal prefixes in two providers: the
lower provider pk wins, and ``ClientTable.problems`` names the overlap. No match: None, and the server drops
the datagram (RFC 2865 §3). Sans-IO: built from the provider configs of /api/v3/outposts/radius/.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Client:
    """One network of one provider, with what the server needs to answer it."""

    network: Network
    provider_pk: int
    provider_name: str
    secret: bytes = field(repr=False)
    require_message_authenticator: bool = True
    mfa_support: bool = True
    cached: bool = False  # the provider's bind_mode is "cached": PAP successes are remembered (outpost/bind_cache.py)


@dataclass(frozen=True)
class ClientTable:
    clients: tuple[Client, ...] = ()  # longest prefix first
    problems: tuple[str, ...] = ()

    def lookup(self, address: str) -> Client | None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:  # a dual-stack socket
            ip = ip.ipv4_mapped
        for client in self.clients:
            if ip.version == client.network.version and ip in client.network:
                return client
        return None


def build_table(providers: Iterable[dict]) -> ClientTable:
    """The table for the providers' configs; a provider without a secret or with a bad CIDR is reported in
    ``problems`` (that CIDR is skipped, the rest serve)."""
    clients: list[Client] = []
    problems: list[str] = []
    seen: dict[Network, str] = {}
    for provider in sorted(providers, key=lambda p: _pk(p)):
        name = str(provider.get("name") or provider.get("pk"))
        secret = str(provider.get("shared_secret") or "")
        if not secret:
            problems.append(f"RADIUS provider {name!r} has no shared secret; its clients are dropped")
            continue
        for raw in str(provider.get("client_networks") or "").split(","):
            cidr = raw.strip()
            if not cidr:
                continue
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"RADIUS provider {name!r}: client network {cidr!r} is not a CIDR; skipped")
                continue
            if network in seen:
                problems.append(f"RADIUS providers {seen[network]!r} and {name!r} both list {network}; "
                                f"{seen[network]!r} answers it")
                continue
            seen[network] = name
            clients.append(Client(network=network, provider_pk=_pk(provider), provider_name=name,
                                  secret=secret.encode(),
                                  require_message_authenticator=provider.get("require_message_authenticator",
                                                                             True) is not False,
                                  mfa_support=bool(provider.get("mfa_support", True)),
                                  cached=provider.get("bind_mode") == "cached"))
    clients.sort(key=lambda c: -c.network.prefixlen)  # stable: equal prefixes keep the pk order
    return ClientTable(tuple(clients), tuple(problems))


def _pk(provider: dict) -> int:
    try:
        return int(provider.get("pk") or 0)
    except (TypeError, ValueError):
        return 0
