"""Identity headers (reference §2.8; DESIGN.md §2 "Identity headers") and header hygiene (THREATS 5).

Forward modes: the identity headers are *response* headers that the reverse proxy copies onto the upstream
request. Proxy mode: they are *request* headers to the upstream, set after the client's own identity
headers (every spelling) and hop-by-hop headers (RFC 9110 §7.6.1) have been removed, so neither a spoofed
``X_Authentik_Username`` nor ``Connection: X-authentik-username`` gets through.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict

from outpost.proxy.apps import AppConfig

IDENTITY_PREFIX = "x-authentik-"
# Go canonical spelling, as authentik emits them (Caddy's copy_headers once matched case-sensitively).
IDENTITY_HEADERS = (
    "X-Authentik-Username", "X-Authentik-Groups", "X-Authentik-Entitlements", "X-Authentik-Email",
    "X-Authentik-Name", "X-Authentik-Uid", "X-Authentik-Jwt", "X-Authentik-Meta-Jwks",
    "X-Authentik-Meta-Outpost", "X-Authentik-Meta-Provider", "X-Authentik-Meta-App", "X-Authentik-Meta-Version",
)
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization",
})


def version_string(version: str) -> str:
    return f"goauthentik.io/outpost/{version}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return ""


def _joined(value: Any) -> str:
    if not isinstance(value, list):
        return ""
    return "|".join(_text(item) for item in value)


def _safe_value(value: str) -> str:
    """Header values cannot carry CR/LF/NUL (RFC 9110 §5.5); a claim that does is dropped, not split."""
    return "" if any(c in value for c in "\r\n\x00") else value


def _valid_name(name: str) -> bool:
    """A token (RFC 9110 §5.6.2) without '_' (dropped like authentik's removeDuplicateUnderscoreHeader)."""
    return bool(name) and "_" not in name and all(
        c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^`|~") for c in name)


def identity_headers(app: AppConfig, claims: Mapping[str, Any], raw_token: str, version: str) -> list[tuple[str, str]]:
    """The headers a 2xx for ``claims`` carries, in authentik's names and values (TestAdHeaders_*).

    Every identity header is always present (empty if unknown). ``Authorization: Basic`` when basic auth is
    enabled, ``ak_proxy`` claims are present and the password attribute is non-empty. ``additionalHeaders``
    from the user's attributes last; none of those may replace an ``X-Authentik-*`` header, and names with
    '_' or invalid characters are dropped."""
    values = {
        "X-Authentik-Username": _text(claims.get("preferred_username")),
        "X-Authentik-Groups": _joined(claims.get("groups")),
        "X-Authentik-Entitlements": _joined(claims.get("entitlements")),
        "X-Authentik-Email": _text(claims.get("email")),
        "X-Authentik-Name": _text(claims.get("name")),
        "X-Authentik-Uid": _text(claims.get("sub")),
        "X-Authentik-Jwt": raw_token or "",
        "X-Authentik-Meta-Jwks": app.oidc.jwks_uri,
        "X-Authentik-Meta-Outpost": app.outpost_name,
        "X-Authentik-Meta-Provider": app.name,
        "X-Authentik-Meta-App": app.app_slug,
        "X-Authentik-Meta-Version": version_string(version),
    }
    out = [(name, _safe_value(values[name])) for name in IDENTITY_HEADERS]
    proxy = claims.get("ak_proxy")
    attributes = proxy.get("user_attributes") if isinstance(proxy, Mapping) else None
    attributes = attributes if isinstance(attributes, Mapping) else {}
    if app.basic_auth_enabled and isinstance(proxy, Mapping):
        password = _text(attributes.get(app.basic_auth_password_attribute))
        user = _text(attributes.get(app.basic_auth_user_attribute)) or _text(claims.get("email"))
        if password:
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            out.append(("Authorization", f"Basic {token}"))
    extra = attributes.get("additionalHeaders")
    if isinstance(extra, Mapping):
        taken = {name.lower() for name, _ in out}
        for name, value in extra.items():
            if not isinstance(name, str) or not _valid_name(name) or name.lower() in taken:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            out.append((name, _safe_value(str(value))))
            taken.add(name.lower())
    return out


USERNAME_SCOPE = "profile"  # the scope whose mapping yields preferred_username (OIDC Core §5.4)


def missing_username(app: AppConfig) -> str:
    """Why a login of ``app`` names no one, for the log line that goes with the 500 (issue 8 item 2)."""
    if USERNAME_SCOPE not in app.scopes:
        return (f"provider {app.name!r}: the login's claims carry no preferred_username because the provider "
                f"does not request the {USERNAME_SCOPE!r} scope (scopes_to_request: {' '.join(app.scopes) or 'none'});"
                " give it the default scope mappings (authentik default OAuth Mapping: OpenID 'profile'); "
                "answering 500, never a 2xx without identity")
    return (f"provider {app.name!r}: the login's claims carry no preferred_username although the "
            f"{USERNAME_SCOPE!r} scope is requested: its scope mapping returns none; answering 500, never a 2xx "
            "without identity")


def empty_identity_headers() -> list[tuple[str, str]]:
    """Every identity header, empty: sent on an unauthenticated-path 2xx so a proxy that copies headers
    only when present (Caddy before GHSA-7r4p-vjf4-gxv4) still overwrites client-sent copies."""
    return [(name, "") for name in IDENTITY_HEADERS]


def is_identity_spelling(name: str) -> bool:
    """``X-authentik-*`` in any case and with '_' for '-' (``X_AUTHENTIK_USERNAME``, ``x-authentik_uid``)."""
    return name.lower().replace("_", "-").startswith(IDENTITY_PREFIX)


def strip_client_headers(headers: Mapping[str, str] | CIMultiDict) -> CIMultiDict:
    """A copy of a client's request headers fit to go upstream: without identity headers in any spelling,
    without any header whose name contains '_', without hop-by-hop headers and without the headers the
    client's ``Connection`` names (RFC 9110 §7.6.1). Call this BEFORE adding our headers, so Connection can
    never remove ours."""
    items = list(headers.items())
    listed = set()
    for name, value in items:
        if name.lower() == "connection":
            listed.update(token.strip().lower() for token in value.split(",") if token.strip())
    out: CIMultiDict = CIMultiDict()
    for name, value in items:
        lower = name.lower()
        if "_" in name or is_identity_spelling(name) or lower in HOP_BY_HOP or lower in listed:
            continue
        out.add(name, value)
    return out


def set_headers(headers: CIMultiDict, new: list[tuple[str, str]]) -> CIMultiDict:
    """Set (overwrite) each header, then drop every header with '_' in its name (authentik's
    removeDuplicateUnderscoreHeader) and any other identity spelling that is not one we set."""
    for name, _ in new:
        headers.popall(name, None)
    ours = {name.lower() for name, _ in new}
    for name in list(headers.keys()):
        if "_" in name or (is_identity_spelling(name) and name.lower() not in ours):
            headers.popall(name, None)
    for name, value in new:
        headers.add(name, value)
    return headers
