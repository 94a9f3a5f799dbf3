"""Per-application configuration, built once per snapshot from one provider of ``/api/v3/outposts/proxy/``
(authentik's ProxyOutpostConfig field names, reference §2.2), and the host -> application lookup (§2.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from protocols.forward import (
    Host,
    SkipRules,
    TargetError,
    host_of_url,
    in_cookie_domain,
    parse_host,
)
from protocols.proxy_provider import FORWARD_DOMAIN, MODES, PROXY, Access, AccessError, callback_urls

LOOKUP_CACHE = 1024  # (Host header, scheme) answers remembered per snapshot, then forgotten all at once


class ConfigError(ValueError):
    """A provider config the outpost cannot serve; lists every problem at once."""


@dataclass(frozen=True)
class OIDCEndpoints:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str = ""
    introspection_endpoint: str = ""
    algorithms: tuple[str, ...] = ("RS256",)

    @property
    def hs256(self) -> bool:
        """authentik: HS256 with client_secret when the provider advertises it (no signing key), §2.5."""
        return "HS256" in self.algorithms


@dataclass(frozen=True)
class AppConfig:
    pk: int
    name: str
    client_id: str
    client_secret: str = field(repr=False)
    external_host: str  # without trailing slash
    host: Host  # normalised host of external_host (the lookup key)
    scheme: str
    mode: str
    cookie_secret: str = field(repr=False)
    oidc: OIDCEndpoints
    internal_host: str = ""
    internal_host_ssl_validation: bool = True
    cookie_domain: str = ""  # leading dot stripped
    skip: SkipRules = field(default_factory=SkipRules)
    basic_auth_enabled: bool = False
    basic_auth_user_attribute: str = ""
    basic_auth_password_attribute: str = ""
    access_token_validity: float | None = None
    intercept_header_auth: bool = True
    scopes: tuple[str, ...] = ()
    app_slug: str = ""
    app_name: str = ""
    access: Access | None = None
    outpost_name: str = ""

    @property
    def domain_mode(self) -> bool:
        return self.mode == FORWARD_DOMAIN

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @cached_property
    def cookie_name(self) -> str:
        """``authentik_proxy_<first 8 hex of sha256(client_id)>`` (reference §2.9)."""
        return "authentik_proxy_" + hashlib.sha256(self.client_id.encode()).hexdigest()[:8]

    @property
    def redirect_uri(self) -> str:
        return callback_urls(self.external_host)[0]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, outpost_name: str = "") -> AppConfig:
        errors: list[str] = []
        name = str(data.get("name") or data.get("pk") or "?")

        def text(key: str, required: bool = False) -> str:
            value = data.get(key)
            if value is None:
                value = ""
            if not isinstance(value, str):
                errors.append(f"provider {name!r}: {key} must be a string, got {type(value).__name__}")
                return ""
            if required and not value:
                errors.append(f"provider {name!r}: {key} is required")
            return value

        external_host = text("external_host", True).rstrip("/")
        host, scheme = Host(""), "https"
        if external_host:
            try:
                host = host_of_url(external_host)
                scheme = urlsplit(external_host).scheme.lower()
            except TargetError as exc:
                errors.append(f"provider {name!r}: external_host {external_host!r}: {exc}; "
                              "set it to the URL users open, e.g. https://app.example.com")
        mode = data.get("mode") or PROXY
        if mode not in MODES:
            errors.append(f"provider {name!r}: mode {mode!r} is not one of {MODES}")
        cookie_domain = text("cookie_domain").strip().lstrip(".").lower()
        if mode == FORWARD_DOMAIN:
            if not cookie_domain:
                errors.append(f"provider {name!r}: forward_domain mode needs cookie_domain")
            elif host.hostname and not in_cookie_domain(host.hostname, cookie_domain):
                errors.append(f"provider {name!r}: external_host {external_host!r} is not under cookie_domain "
                              f"{cookie_domain!r}")
        client_id = text("client_id", True)
        client_secret = text("client_secret", True)
        cookie_secret = text("cookie_secret", True)
        oidc_data = data.get("oidc_configuration")
        oidc = OIDCEndpoints("", "", "", "")
        if not isinstance(oidc_data, Mapping):
            errors.append(f"provider {name!r}: oidc_configuration must be an object")
        else:
            missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
                       if not isinstance(oidc_data.get(k), str) or not oidc_data.get(k)]
            if missing:
                errors.append(f"provider {name!r}: oidc_configuration lacks {', '.join(missing)}")
            algs = oidc_data.get("id_token_signing_alg_values_supported") or ["RS256"]
            oidc = OIDCEndpoints(
                str(oidc_data.get("issuer", "")), str(oidc_data.get("authorization_endpoint", "")),
                str(oidc_data.get("token_endpoint", "")), str(oidc_data.get("jwks_uri", "")),
                str(oidc_data.get("end_session_endpoint") or ""),
                str(oidc_data.get("introspection_endpoint") or ""),
                tuple(str(a) for a in algs) if isinstance(algs, list) else ("RS256",))
        skip = SkipRules.compile(text("skip_path_regex"))
        try:
            access = Access.from_json(data.get("access"))
        except AccessError as exc:
            errors.append(f"provider {name!r}: {exc}")
            access = None
        validity = data.get("access_token_validity")
        if validity is not None and not isinstance(validity, int | float):
            errors.append(f"provider {name!r}: access_token_validity must be a number of seconds")
            validity = None
        scopes = data.get("scopes_to_request") or []
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            errors.append(f"provider {name!r}: scopes_to_request must be a list of strings")
            scopes = []
        if errors:
            raise ConfigError("; ".join(errors))
        return cls(
            pk=int(data.get("pk") or 0), name=str(data.get("name") or ""), client_id=client_id,
            client_secret=client_secret, external_host=external_host, host=host, scheme=scheme, mode=mode,
            cookie_secret=cookie_secret, oidc=oidc, internal_host=text("internal_host").rstrip("/"),
            internal_host_ssl_validation=bool(data.get("internal_host_ssl_validation", True)),
            cookie_domain=cookie_domain, skip=skip,
            basic_auth_enabled=bool(data.get("basic_auth_enabled")),
            basic_auth_user_attribute=text("basic_auth_user_attribute"),
            basic_auth_password_attribute=text("basic_auth_password_attribute"),
            access_token_validity=float(validity) if validity is not None else None,
            intercept_header_auth=bool(data.get("intercept_header_auth", True)), scopes=tuple(scopes),
            app_slug=text("assigned_application_slug"), app_name=text("assigned_application_name"),
            access=access, outpost_name=outpost_name)


class UnknownHost(LookupError):
    """No application serves this host (the handler answers 400 with ``no_app_body``)."""

    def __init__(self, host: str):
        super().__init__(f"no application for host {host!r}; add it as a provider's external_host "
                         "(or under a forward_domain cookie domain)")
        self.host = host


class Apps:
    """The applications of one snapshot, immutable; a refresh builds a new Apps and swaps it atomically.

    ``errors`` lists providers that could not be loaded (they are not served: their hosts get 400)."""

    def __init__(self, configs: Iterable[AppConfig], errors: Iterable[str] = ()):
        self.configs = tuple(configs)
        self.errors = tuple(errors)
        self._by_host = {c.host: c for c in self.configs}
        self._domain = sorted((c for c in self.configs if c.domain_mode), key=lambda c: -len(c.cookie_domain))
        self._by_client = {c.client_id: c for c in self.configs}
        self._lookups: dict[tuple[str, str], AppConfig | None] = {}  # lookup()'s answers (None: unknown host)
        self.has_proxy_mode = any(c.mode == PROXY for c in self.configs)

    @classmethod
    def from_snapshot(cls, providers: Iterable[Mapping[str, Any]], *, outpost_name: str = "") -> Apps:
        configs, errors = [], []
        for data in providers:
            try:
                configs.append(AppConfig.from_json(data, outpost_name=outpost_name))
            except ConfigError as exc:
                errors.append(str(exc))
        return cls(configs, errors)

    def by_client_id(self, client_id: str) -> AppConfig | None:
        return self._by_client.get(client_id)

    def lookup(self, host_header: str, scheme: str = "https") -> AppConfig:
        """Exact external host (host and port), then forward_domain apps whose cookie domain contains the host
        on a dot boundary (longest domain wins). Unlike authentik, a single app is NOT used as a fallback for
        an unknown host (THREATS 2: another host gains nothing). Raises UnknownHost naming the host.

        The answer is a pure function of this (immutable) Apps, so it is remembered: at most LOOKUP_CACHE
        distinct (host, scheme) pairs, then all are forgotten at once (junk Host headers cannot grow it)."""
        key = (host_header, scheme)
        try:
            found = self._lookups[key]
        except KeyError:
            if len(self._lookups) >= LOOKUP_CACHE:
                self._lookups.clear()
            try:
                found = self._lookups[key] = self._lookup(host_header, scheme)
            except UnknownHost:
                self._lookups[key] = None
                raise
        if found is None:
            raise UnknownHost(host_header)
        return found

    def _lookup(self, host_header: str, scheme: str) -> AppConfig:
        try:
            host = parse_host(host_header, scheme)
        except TargetError:
            raise UnknownHost(host_header) from None
        exact = self._by_host.get(host)
        if exact is not None:
            return exact
        for config in self._domain:
            if in_cookie_domain(host.hostname, config.cookie_domain):
                return config
        raise UnknownHost(host_header)


def no_app_body(host: str) -> dict[str, str]:
    """authentik's 400 body for an unknown host (reference §2.1)."""
    return {"Message": "no app for hostname", "Host": host,
            "Detail": f"Check the outpost settings and make sure '{host}' is included."}
