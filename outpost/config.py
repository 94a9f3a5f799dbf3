"""Standalone outpost configuration from the environment, with authentik's variable names (reference §1.1).

Read once into a frozen dataclass; every problem is reported together, naming the variable and what it
expects (DESIGN §4.5). The token never appears in a repr or a message. Listen defaults are authentik's
ports (http 9000, https 9443, ldap 3389, ldaps 6636, radius 1812, radius accounting 1813, metrics 9300) on 0.0.0.0, like the core
(authentik says ``[::]``; an IPv6 wildcard fails where IPv6 is disabled, so set ``[::]:9000`` to get it).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

from protocols import trust

LOG_LEVELS = ("trace", "debug", "info", "warning", "error")
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off", "")
DEFAULT_LISTEN = {
    "AUTHENTIK_LISTEN__HTTP": "0.0.0.0:9000",
    "AUTHENTIK_LISTEN__HTTPS": "0.0.0.0:9443",
    "AUTHENTIK_LISTEN__METRICS": "0.0.0.0:9300",
    "AUTHENTIK_LISTEN__LDAP": "0.0.0.0:3389",
    "AUTHENTIK_LISTEN__LDAPS": "0.0.0.0:6636",
    "AUTHENTIK_LISTEN__RADIUS": "0.0.0.0:1812",
    "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING": "0.0.0.0:1813",
}


class OutpostConfigError(ValueError):
    """Every configuration problem found, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid outpost configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _default(name: str) -> Listen:
    host, _, port = DEFAULT_LISTEN[name].rpartition(":")
    return Listen(host, int(port))


@dataclass(frozen=True)
class OutpostConfig:
    authentik_host: str  # always ends with "/"
    token: str = field(repr=False)
    insecure: bool = False
    host_browser: str = ""
    log_level: str = "info"
    listen_http: Listen = field(default_factory=lambda: _default("AUTHENTIK_LISTEN__HTTP"))
    listen_https: Listen = field(default_factory=lambda: _default("AUTHENTIK_LISTEN__HTTPS"))
    listen_metrics: Listen = field(default_factory=lambda: _default("AUTHENTIK_LISTEN__METRICS"))
    listen_ldap: Listen = field(default_factory=lambda: _default("AUTHENTIK_LISTEN__LDAP"))
    listen_ldaps: Listen = field(default_factory=lambda: _default("AUTHENTIK_LISTEN__LDAPS"))
    listen_radius: Listen = field(default_factory=lambda: _default("AUTHENTIK_LISTEN__RADIUS"))
    listen_radius_accounting: Listen = field(
        default_factory=lambda: _default("AUTHENTIK_LISTEN__RADIUS_ACCOUNTING"))
    # forwarded headers count only from these peers (AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS)
    trusted_proxy_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=trust.default_networks)
    redis_url: str | None = field(default=None, repr=False)  # shared proxy sessions (several replicas)
    state_dir: str = "/tmp"  # noqa: S108 - the proxy's session snapshot when there is no Redis, its certificate
    tls_cert_file: str = ""  # AUTHENTIK_PROXY__TLS_CERT_FILE; empty: self-signed, kept in the state directory
    ldap_tls_cert_file: str = ""  # AUTHENTIK_LDAP__TLS_CERT_FILE; empty: self-signed, made in memory at start


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def url(self, name: str, example: str, required: bool) -> str:
        raw = self.env.get(name, "").strip()
        if not raw:
            if required:
                self.problems.append(f"{name} is not set: the core's URL, e.g. {name}={example}")
            return ""
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problems.append(f"{name}={raw!r}: expected an http:// or https:// URL, e.g. {name}={example}")
            return ""
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            self.problems.append(f"{name}={raw!r}: the port is not a number from 1 to 65535")
            return ""
        return raw

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.env.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self.problems.append(f"{name}={raw!r}: expected true or false")
        return default

    def listen(self, name: str) -> Listen:
        default = DEFAULT_LISTEN[name]
        raw = self.env.get(name, default).strip()
        host, sep, port = raw.rpartition(":")
        host = host.strip("[]")
        try:
            if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError(port)
            if host and (host[0].isdigit() or ":" in host):
                ipaddress.ip_address(host)
            return Listen(host or "0.0.0.0", int(port))  # noqa: S104 - all interfaces is the default
        except ValueError:
            self.problems.append(f"{name}={raw!r}: expected host:port, e.g. {name}={default}")
            return _default(name)

    def cidrs(self, name: str) -> tuple:
        networks, problems = trust.parse_cidrs(self.env.get(name), name)
        self.problems += problems
        return networks

    def cert_file(self, name: str) -> str:
        """A PEM file (certificate and key) that loads, or "" when unset."""
        raw = self.env.get(name, "").strip()
        if raw:
            from protocols import tls

            try:
                tls.server_context(raw, name)
            except ValueError as exc:
                self.problems.append(str(exc))
        return raw

    def redis(self) -> str | None:
        host = self.env.get("AUTHENTIK_REDIS__HOST", "").strip()
        url = self.env.get("AUTHENTIK_REDIS__URL", "").strip()
        if url:  # Sentinel, as the core's (core/config.py _redis_sentinel)
            from protocols import redis_url

            try:
                redis_url.parse(url)
            except ValueError as exc:
                self.problems.append(str(exc))
                return None
            if host:
                self.problems.append("AUTHENTIK_REDIS__URL and AUTHENTIK_REDIS__HOST are both set: the URL names the "
                                     "sentinels and the master; unset AUTHENTIK_REDIS__HOST")
            return url
        if not host:
            return None
        port, db = self.env.get("AUTHENTIK_REDIS__PORT", "6379").strip(), self.env.get("AUTHENTIK_REDIS__DB", "0").strip()
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            self.problems.append(f"AUTHENTIK_REDIS__PORT={port!r}: expected a port number, e.g. 6379")
        if not db.isdigit() or not 0 <= int(db) <= 15:
            self.problems.append(f"AUTHENTIK_REDIS__DB={db!r}: expected a number from 0 to 15")
        username, password = self.env.get("AUTHENTIK_REDIS__USERNAME", ""), self.env.get("AUTHENTIK_REDIS__PASSWORD", "")
        auth = f"{quote(username, safe='')}:{quote(password, safe='')}@" if username or password else ""
        host = f"[{host}]" if ":" in host else host
        tls_raw = self.env.get("AUTHENTIK_REDIS__TLS", "false").strip().lower()
        if tls_raw not in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
            self.problems.append(f"AUTHENTIK_REDIS__TLS={tls_raw!r}: expected true or false")
        if tls_raw not in ("true", "1", "yes", "on"):
            return f"redis://{auth}{host}:{port}/{db}"
        # as the core's (core/config.py RedisConfig.url): redis-py's ssl_cert_reqs and ssl_ca_certs
        reqs = self.env.get("AUTHENTIK_REDIS__TLS_REQS", "required").strip().lower()
        if reqs not in ("none", "optional", "required"):
            self.problems.append(f"AUTHENTIK_REDIS__TLS_REQS={reqs!r}: expected one of none, optional, required")
        query = {"ssl_cert_reqs": reqs}
        ca = self.env.get("AUTHENTIK_REDIS__TLS_CA_CERT", "").strip()
        if ca:
            if not os.path.isfile(ca):
                self.problems.append(f"AUTHENTIK_REDIS__TLS_CA_CERT={ca!r}: no file there; give the path of the "
                                     "CA's PEM file, or unset it to use the system's CAs")
            query["ssl_ca_certs"] = ca
        return f"rediss://{auth}{host}:{port}/{db}?{urlencode(query)}"


def load(env: Mapping[str, str] | None = None) -> OutpostConfig:
    """Build the configuration from ``env`` (default: the process environment); raises
    OutpostConfigError listing every problem at once."""
    env = os.environ if env is None else env
    r = _Reader(env)
    host = r.url("AUTHENTIK_HOST", "https://auth.example.com", required=True)
    token = env.get("AUTHENTIK_TOKEN", "").strip()
    if not token:
        r.problems.append("AUTHENTIK_TOKEN is not set: the outpost's token (admin interface: Outposts -> "
                          "the outpost -> View deployment info)")
    elif any(c.isspace() for c in token):
        r.problems.append("AUTHENTIK_TOKEN contains whitespace: copy the token again, without spaces or newlines")
    level = env.get("AUTHENTIK_LOG_LEVEL", "info").strip().lower()
    if level not in LOG_LEVELS:
        r.problems.append(f"AUTHENTIK_LOG_LEVEL={level!r}: expected one of {', '.join(LOG_LEVELS)}")
        level = "info"
    config = OutpostConfig(
        authentik_host=(host.rstrip("/") + "/") if host else "",
        token=token,
        insecure=r.bool("AUTHENTIK_INSECURE"),
        host_browser=r.url("AUTHENTIK_HOST_BROWSER", "https://auth.example.com", required=False),
        log_level=level,
        listen_http=r.listen("AUTHENTIK_LISTEN__HTTP"),
        listen_https=r.listen("AUTHENTIK_LISTEN__HTTPS"),
        listen_metrics=r.listen("AUTHENTIK_LISTEN__METRICS"),
        listen_ldap=r.listen("AUTHENTIK_LISTEN__LDAP"),
        listen_ldaps=r.listen("AUTHENTIK_LISTEN__LDAPS"),
        listen_radius=r.listen("AUTHENTIK_LISTEN__RADIUS"),
        listen_radius_accounting=r.listen("AUTHENTIK_LISTEN__RADIUS_ACCOUNTING"),
        trusted_proxy_cidrs=r.cidrs("AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS"),
        redis_url=r.redis(),
        state_dir=env.get("AUTHENTIK_OUTPOST_STATE_DIR", "").strip() or env.get("TMPDIR", "").strip() or "/tmp",  # noqa: S108
        tls_cert_file=r.cert_file("AUTHENTIK_PROXY__TLS_CERT_FILE"),
        ldap_tls_cert_file=r.cert_file("AUTHENTIK_LDAP__TLS_CERT_FILE"),
    )
    if r.problems:
        raise OutpostConfigError(r.problems)
    return config
