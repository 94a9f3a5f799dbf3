"""Who may speak for a client (THREATS 2, 3, 9): the trusted proxy networks, the X-Forwarded-For chain and
X-Forwarded-Proto, for the core and the outposts alike. Pure: standard library only.

``AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS`` (default ``DEFAULT_TRUSTED_PROXY_CIDRS``: loopback, the private ranges,
IPv6 link-local) is read by ``parse_cidrs`` for both configurations (core/config.py, outpost/config.py). Two walks
of X-Forwarded-For live here, each keeping the semantics its side has always had:

* ``client_chain`` (the proxy outpost): the client and the X-Forwarded-For to send upstream. An unparsable hop
  makes the whole header untrusted: it is replaced by the peer's address, never skipped (THREATS 3).
* ``resolve`` (the core: rate limits, events, policies): the client address and the trusted hop that vouched for
  it; an unparsable hop falls back to the socket peer, flagged untrusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_TRUSTED_PROXY_CIDRS = (  # authentik's trusted_proxy_cidrs default, for the core and the outposts
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fe80::/10", "::1/128",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address (IPv4-mapped IPv6 unwrapped, zone id refused), or None for anything else."""
    if not isinstance(value, str) or not value or "%" in value:
        return None
    try:
        addr = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True)
class TrustedNetworks:
    """The networks whose requests may carry forwarded headers (reverse proxies). Empty trusts no one."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, cidrs: Iterable[str | Network] | str | None = None) -> TrustedNetworks:
        """From CIDR strings (a list, or one comma-separated string), or the defaults when None.
        Raises ValueError naming every bad entry."""
        if cidrs is None:
            cidrs = DEFAULT_TRUSTED_PROXY_CIDRS
        if isinstance(cidrs, str):
            cidrs = [c for c in (part.strip() for part in cidrs.split(",")) if c]
        networks, bad = [], []
        for cidr in cidrs:
            if isinstance(cidr, ipaddress.IPv4Network | ipaddress.IPv6Network):
                networks.append(cidr)
                continue
            try:
                networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
            except ValueError:
                bad.append(repr(cidr))
        if bad:
            raise ValueError(f"trusted proxy networks: {', '.join(bad)} are not CIDRs (e.g. 10.0.0.0/8); "
                             "fix AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS")
        return cls(tuple(networks))

    def contains(self, ip: str | None) -> bool:
        """Is ``ip`` (a peer address string) in a trusted network? Unparsable or missing -> False."""
        addr = _address(ip)
        return addr is not None and any(addr.version == net.version and addr in net for net in self.networks)


@dataclass(frozen=True)
class ClientChain:
    """The client address and the X-Forwarded-For value to send upstream."""

    client_ip: str
    forwarded_for: str
    trusted: bool  # False when a forwarded header was present but unusable or from an untrusted peer


def client_chain(peer: str | None, forwarded_for: str | None, trusted: TrustedNetworks) -> ClientChain:
    """Walk ``X-Forwarded-For`` from the right while hops are trusted proxies (RFC 7239 §5.2 semantics for
    the de-facto header). From an untrusted peer the header is ignored; if any hop is not an IP address
    the header is discarded and the peer is the client (THREATS 3: untrusted, never "unknown = skip")."""
    peer_addr = _address(peer)
    peer_text = str(peer_addr) if peer_addr is not None else ""
    if not forwarded_for:
        return ClientChain(peer_text, peer_text, True)
    if not trusted.contains(peer):
        return ClientChain(peer_text, peer_text, False)
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    parsed = [_address(hop) for hop in hops]
    if any(addr is None for addr in parsed) or len(hops) > 64:
        return ClientChain(peer_text, peer_text, False)
    client = str(parsed[0])
    for addr in reversed(parsed):
        if not trusted.contains(str(addr)):
            client = str(addr)
            break
    chain = ", ".join(str(a) for a in parsed) + (f", {peer_text}" if peer_text else "")
    return ClientChain(client, chain, True)


def parse_cidrs(raw: str | None, variable: str = "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS",
                default: Iterable[str] = DEFAULT_TRUSTED_PROXY_CIDRS) -> tuple[tuple[Network, ...], list[str]]:
    """A configuration value (comma-separated CIDRs; None: ``default``) -> (networks, problems), each problem
    naming the variable, the bad item and what is expected."""
    items = tuple(default) if raw is None else tuple(p.strip() for p in raw.split(",") if p.strip())
    networks, problems = [], []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            problems.append(f"{variable}: {item!r} is not a network; expected CIDRs like 10.0.0.0/8,::1/128")
    return tuple(networks), problems


def default_networks() -> tuple[Network, ...]:
    return parse_cidrs(None)[0]


# --- the core's view: the client address of a request ------------------------------------------------------

@dataclass(frozen=True)
class ClientAddress:
    ip: str
    trusted: bool  # False when a forwarded header was present but unusable
    via: str = ""  # the trusted hop that vouched for ``ip`` (its right neighbour); "" when ip is the socket peer


def _in(networks: Iterable[Network], ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)


def resolve(remote_addr: str, forwarded_for: str | None, networks: Iterable[Network]) -> ClientAddress:
    """Walk X-Forwarded-For from the right, skipping trusted proxies; the first other hop is the client."""
    networks = tuple(networks)
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


def client_inside(peer: str | None, forwarded_for: str | None, networks: Iterable[Network]) -> bool:
    """Is the client itself (resolved from the socket peer and X-Forwarded-For through trusted proxies) inside
    the trusted networks? A request relayed by a trusted proxy for an outside client is not; an unparsable
    address is not (fail closed). The core's /metrics on :9000 (THREATS 9)."""
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


def forwarded_scheme(socket_scheme: str, forwarded_proto: str | None, peer_ip: str,
                     networks: Iterable[Network]) -> str:
    """The socket's scheme, or X-Forwarded-Proto (``http``/``https`` only) when the peer is a trusted proxy."""
    forwarded = (forwarded_proto or "").strip().lower()
    networks = tuple(networks)
    if forwarded in ("http", "https") and networks:
        try:
            addr = ipaddress.ip_address(peer_ip)
        except ValueError:
            return socket_scheme
        if any(addr in net for net in networks):
            return forwarded
    return socket_scheme
