"""Header authentication for clients without cookies (reference §2.4 "Authentication check" steps 2-4;
DESIGN.md §2): ``Authorization: Bearer <token>`` and ``Authorization: Basic <user>:<app password>``.

* Bearer: RFC 7662 token introspection at the provider's ``introspection_endpoint`` (client_secret_post).
  Accepted only when ``active`` is true AND the token was issued for this provider's ``client_id``
  (THREATS 8; authentik CVE-2024-47077): the response's ``client_id`` must be ours, and its ``aud`` (when
  present) must name us. ``sub`` and an unexpired ``exp`` are required.
* Basic ``goauthentik.io/token:<token>``: the password is a bearer token (as above).
* Basic ``<username>:<app password>``: the token endpoint's ``client_credentials`` grant with ``username`` /
  ``password`` (authentik's app-password flow, RFC 6749 §4.4); the returned id_token is verified like the
  login's (issuer, ``aud`` = client_id, ``exp``, signature).
* Results are cached for at most ``CACHE_TTL`` seconds (never past the token's ``exp``), keyed by
  sha256(client_id, header value), in a bounded LRU. A cached identity still goes through ``decide()`` on
  every request (per-request access), and SESSION_END for its ``sid`` drops it (``forget_sid``).
* Failures are never cached and never a 2xx: a refused credential is "no identity"; an IdP that cannot be
  asked is ``HeaderAuthError`` (the handler answers 502).

Unlike authentik, a header-authenticated request creates no cookie session (an API client would not send
it back), and a cache hit is treated exactly like a fresh check (the ``Authorization`` header is stripped
before proxying either way).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from outpost.proxy import oauth
from outpost.proxy.apps import AppConfig
from outpost.proxy.session import Session

CACHE_TTL = 60.0
CACHE_SIZE = 4096
TOKEN_USERNAME = "goauthentik.io/token"  # noqa: S105 - a marker username, not a secret
MAX_HEADER = 8192


class HeaderAuthError(Exception):
    """The identity provider could not be asked (unreachable, 5xx, garbage): answer 502, never 2xx."""


@dataclass(frozen=True)
class Credentials:
    kind: str  # "bearer" | "basic"
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)


def parse_authorization(value: str | None) -> Credentials | None:
    """Parse an ``Authorization`` value (RFC 9110 §11.6.2; schemes case-insensitive, RFC 6750 §2.1 Bearer,
    RFC 7617 Basic). None for anything else, including malformed Basic payloads. Never raises."""
    if not value or len(value) > MAX_HEADER:
        return None
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    if not rest:
        return None
    scheme = scheme.lower()
    if scheme == "bearer":
        return Credentials("bearer", token=rest) if _token_chars(rest) else None
    if scheme != "basic":
        return None
    try:
        decoded = base64.b64decode(rest, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username or not password:
        return None
    if username == TOKEN_USERNAME:
        return Credentials("bearer", token=password) if _token_chars(password) else None
    return Credentials("basic", username=username, password=password)


def _token_chars(token: str) -> bool:
    return all(33 <= ord(c) < 127 for c in token)


def cache_key(app: AppConfig, header: str) -> str:
    return hashlib.sha256(f"{app.client_id}\x00{header}".encode()).hexdigest()


class HeaderAuthCache:
    """Bounded LRU of identities from header authentication; entries expire at min(now + ttl, token exp)."""

    def __init__(self, *, ttl: float = CACHE_TTL, size: int = CACHE_SIZE, clock: Callable[[], float] = time.time):
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Session | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        session, until = entry
        if until <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return session

    def put(self, key: str, session: Session) -> None:
        self._entries[key] = (session, min(self.clock() + self.ttl, session.expires_at))
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget_sid(self, sid: str) -> int:
        """SESSION_END: drop every identity derived from the core session ``sid``."""
        keys = [k for k, (s, _) in self._entries.items() if sid and s.sid == sid]
        for key in keys:
            del self._entries[key]
        return len(keys)

    def clear(self) -> None:
        self._entries.clear()


async def _post(http: aiohttp.ClientSession, url: str, form: dict[str, str]) -> tuple[int, Any]:
    if not url:
        raise HeaderAuthError("the provider's oidc_configuration has no endpoint for header authentication")
    try:
        async with http.post(url, data=form) as response:
            status = response.status
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HeaderAuthError(f"{url} failed: {exc}") from None
    if status >= 500:
        raise HeaderAuthError(f"{url} answered {status}")
    return status, body


def _audience_ok(claims: dict[str, Any], client_id: str) -> bool:
    aud = claims.get("aud")
    if aud is None:
        return True
    return aud == client_id or (isinstance(aud, list) and client_id in aud)


async def introspect(app: AppConfig, http: aiohttp.ClientSession, token: str, *, now: float) -> Session | None:
    """RFC 7662 §2.1 request, §2.2 response; accepted only for our client (THREATS 8)."""
    status, body = await _post(http, app.oidc.introspection_endpoint,
                               {"client_id": app.client_id, "client_secret": app.client_secret, "token": token})
    if status != 200 or not isinstance(body, dict) or body.get("active") is not True:
        return None
    if body.get("client_id") != app.client_id or not _audience_ok(body, app.client_id):
        return None
    sub, exp = body.get("sub"), body.get("exp")
    if not isinstance(sub, str) or not sub or not isinstance(exp, int | float) or isinstance(exp, bool) \
            or exp <= now:
        return None
    claims = {k: v for k, v in body.items() if k not in ("active",)}
    return Session("", app.client_id, claims, raw_token=token, expires_at=float(exp))


async def client_credentials(app: AppConfig, http: aiohttp.ClientSession, jwks: oauth.JWKSCache,
                             username: str, password: str, *, now: float) -> Session | None:
    """RFC 6749 §4.4 with authentik's username + app-password extension; the id_token is verified."""
    form = {"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": app.client_secret,
            "username": username, "password": password}
    if app.scopes:
        form["scope"] = " ".join(app.scopes)
    status, body = await _post(http, app.oidc.token_endpoint, form)
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        return None
    try:
        claims = await oauth.verify_token(app, http, jwks, body["id_token"])
    except oauth.TokenInvalid:
        return None
    except oauth.OAuthError as exc:
        raise HeaderAuthError(str(exc)) from None
    if float(claims["exp"]) <= now:
        return None
    access = body.get("access_token") if isinstance(body.get("access_token"), str) else ""
    return Session("", app.client_id, claims, raw_token=access or body["id_token"], id_token=body["id_token"],
                   expires_at=float(claims["exp"]))


async def authenticate(app: AppConfig, http: aiohttp.ClientSession, jwks: oauth.JWKSCache, cache: HeaderAuthCache,
                       header: str | None, *, now: float | None = None) -> Session | None:
    """The identity an ``Authorization`` header proves for ``app`` (cached), or None. Raises HeaderAuthError."""
    credentials = parse_authorization(header)
    if credentials is None:
        return None
    assert header is not None
    key = cache_key(app, header)
    cached = cache.get(key)
    if cached is not None:
        return cached
    now = time.time() if now is None else now
    if credentials.kind == "bearer":
        session = await introspect(app, http, credentials.token, now=now)
    else:
        session = await client_credentials(app, http, jwks, credentials.username, credentials.password, now=now)
    if session is not None:
        cache.put(key, session)
    return session
