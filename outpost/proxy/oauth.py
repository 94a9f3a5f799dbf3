"""The outpost's own OIDC login against the core (reference §2.5), improved as DESIGN.md §2 says:
authorization code + PKCE S256 (RFC 7636) + nonce (OIDC Core §3.1.2.1), and a ``state`` that expires.

* ``state`` = JWT HS256 signed with the provider's ``cookie_secret``: ``iss`` goauthentik.io/outpost/<client>,
  ``sid`` = sha256 of the id in the browser's signed cookie (binds the callback to that browser: a pre-login
  id, or the session of a signed-in user who starts another login, which keeps its cookie until the login
  completes; the digest keeps session ids out of authorize URLs and logs), the post-login ``redirect``
  (carried here, not in a shared session slot: authentik #6886), ``nonce``, a random ``state`` and ``exp``
  (10 minutes).
* The PKCE verifier is never sent to the browser: it is derived as HMAC(cookie_secret, cookie id, state
  nonce), so only this outpost, given the browser's HttpOnly cookie, can redeem the code. Whoever sees the
  callback URL (code + state) still lacks it.
* The token response is verified with PyJWT: HS256 with ``client_secret`` when the provider advertises HS256
  (authentik's proxy providers without a signing key), else RS256/ES256 from the JWKS; ``iss``, ``aud``,
  ``exp``; the id_token's ``nonce`` must equal the state's.

The HTTP client is injected (an ``aiohttp.ClientSession``), so tests run against an in-process fake IdP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt

from outpost.proxy.apps import AppConfig

STATE_TTL = 600  # seconds a login may take between /start and the callback
ASYMMETRIC = ["RS256", "ES256", "RS384", "RS512", "ES384", "ES512", "PS256"]


class OAuthError(Exception):
    """A login step failed; ``status`` is the answer (400: bad/expired state; 502: the IdP misbehaved)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class TokenInvalid(OAuthError):
    """A token that fails verification (signature, issuer, audience, expiry): the IdP was reachable."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def state_issuer(app: AppConfig) -> str:
    return f"goauthentik.io/outpost/{app.client_id}"


def code_verifier(app: AppConfig, prelogin_id: str, nonce: str) -> str:
    """RFC 7636 §4.1: 43 characters of base64url, here derived so no server-side storage is needed."""
    digest = hmac.new(app.cookie_secret.encode(), f"pkce|{app.client_id}|{prelogin_id}|{nonce}".encode(),
                      hashlib.sha256).digest()
    return _b64(digest)


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class State:
    sid: str = field(repr=False)  # the pre-login (cookie) id
    redirect: str
    nonce: str = field(repr=False)
    state: str = field(repr=False)
    exp: int


def browser_binding(cookie_id: str) -> str:
    """What the state carries of the browser's cookie id: its sha256 (the ids are 256-bit random)."""
    return hashlib.sha256(cookie_id.encode()).hexdigest()


def authorize_url(app: AppConfig, prelogin_id: str, redirect: str, *, now: float | None = None) -> str:
    """The 302 target that starts a login (authorization request, RFC 6749 §4.1.1 + PKCE + nonce).
    ``prelogin_id``: the id in the browser's signed cookie the login is bound to."""
    now = int(time.time() if now is None else now)
    nonce = secrets.token_urlsafe(24)
    state = jwt.encode({"iss": state_issuer(app), "sid": browser_binding(prelogin_id),
                        "state": secrets.token_urlsafe(32),
                        "redirect": redirect, "nonce": nonce, "iat": now, "exp": now + STATE_TTL},
                       app.cookie_secret, algorithm="HS256")
    params = {
        "client_id": app.client_id,
        "code_challenge": code_challenge(code_verifier(app, prelogin_id, nonce)),
        "code_challenge_method": "S256",
        "nonce": nonce,
        "redirect_uri": app.redirect_uri,
        "response_type": "code",
        "scope": " ".join(app.scopes),
        "state": state,
    }
    if not params["scope"]:
        del params["scope"]
    separator = "&" if "?" in app.oidc.authorization_endpoint else "?"
    return app.oidc.authorization_endpoint + separator + urlencode(sorted(params.items()))


def parse_state(app: AppConfig, token: str | None, prelogin_id: str | None) -> State:
    """Verify the callback's ``state``: our signature, our issuer, unexpired, and issued to this browser
    (its ``sid`` is the digest of the id in the browser's signed cookie). ``State.sid`` is that cookie id.
    Raises OAuthError(400)."""
    if not token or len(token) > 8192:
        raise OAuthError("missing or oversized state")
    if not prelogin_id:
        raise OAuthError("no login in progress in this browser (cookie missing); start again")
    try:
        claims = jwt.decode(token, app.cookie_secret, algorithms=["HS256"], issuer=state_issuer(app),
                            options={"require": ["exp", "iss", "sid", "nonce"]})
    except jwt.PyJWTError as exc:
        raise OAuthError(f"invalid state: {exc}") from None
    values = [claims.get(k) for k in ("sid", "redirect", "nonce", "state")]
    if not all(isinstance(v, str) for v in values):
        raise OAuthError("invalid state: malformed claims")
    binding, redirect, nonce, rand = values
    if not hmac.compare_digest(binding, browser_binding(prelogin_id)):
        raise OAuthError("state was issued to another browser session")
    return State(prelogin_id, redirect, nonce, rand, int(claims["exp"]))


@dataclass(frozen=True)
class Tokens:
    claims: dict[str, Any]  # the verified access token's claims (authentik's outpost uses these, §2.5)
    access_token: str = field(repr=False)
    id_token: str = field(repr=False)
    expires_at: float


class JWKSCache:
    """The provider's JWKS, fetched with the injected client; re-fetched once when a ``kid`` is unknown."""

    def __init__(self) -> None:
        self._sets: dict[str, jwt.PyJWKSet] = {}

    async def key_for(self, http: aiohttp.ClientSession, uri: str, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise OAuthError(f"token header unreadable: {exc}", 502) from None
        for attempt in range(2):
            if attempt or uri not in self._sets:
                self._sets[uri] = await self._fetch(http, uri)
            keys = [k for k in self._sets[uri].keys if kid is None or k.key_id == kid]
            if keys:
                return keys[0].key
        raise OAuthError(f"no key {kid!r} in the JWKS at {uri}", 502)

    @staticmethod
    async def _fetch(http: aiohttp.ClientSession, uri: str) -> jwt.PyJWKSet:
        try:
            async with http.get(uri) as response:
                if response.status != 200:
                    raise OAuthError(f"JWKS {uri} answered {response.status}", 502)
                data = await response.json(content_type=None)
            return jwt.PyJWKSet.from_dict(data)
        except (aiohttp.ClientError, ValueError, jwt.PyJWTError) as exc:
            raise OAuthError(f"cannot load the JWKS at {uri}: {exc}", 502) from None


async def verify_token(app: AppConfig, http: aiohttp.ClientSession, jwks: JWKSCache, token: str) -> dict[str, Any]:
    """Verify a token the core issued for ``app``: signature (HS256 with client_secret or the JWKS), ``iss``,
    ``aud`` = client_id, ``exp``, ``sub`` (OIDC Core §3.1.3.7). Raises TokenInvalid, or OAuthError(502)
    when the JWKS cannot be loaded."""
    if app.oidc.hs256:
        key, algorithms = app.client_secret, ["HS256"]
    else:
        key, algorithms = await jwks.key_for(http, app.oidc.jwks_uri, token), ASYMMETRIC
    try:
        return jwt.decode(token, key, algorithms=algorithms, audience=app.client_id, issuer=app.oidc.issuer,
                          options={"require": ["exp", "iss", "aud", "sub"]})
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"token from {app.oidc.token_endpoint} failed verification: {exc}", 502) from None


async def redeem(app: AppConfig, http: aiohttp.ClientSession, jwks: JWKSCache, *, code: str | None,
                 state: State, prelogin_id: str) -> Tokens:
    """Exchange the code (RFC 6749 §4.1.3, client_secret_post, + code_verifier) and verify what comes back."""
    if not code or len(code) > 4096:
        raise OAuthError("callback without a code")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
            "client_id": app.client_id, "client_secret": app.client_secret,
            "code_verifier": code_verifier(app, prelogin_id, state.nonce)}
    try:
        async with http.post(app.oidc.token_endpoint, data=form) as response:
            body = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
        raise OAuthError(f"token endpoint {app.oidc.token_endpoint} failed: {exc}", 502) from None
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        error = body.get("error") if isinstance(body, dict) else None
        raise OAuthError(f"token endpoint answered {status} {error or ''}".strip(), 400 if status < 500 else 502)
    access_token = body["access_token"]
    id_token = body.get("id_token") if isinstance(body.get("id_token"), str) else ""
    claims = await verify_token(app, http, jwks, access_token)
    nonce_source = claims
    if id_token:
        id_claims = await verify_token(app, http, jwks, id_token)
        if id_claims.get("sub") != claims.get("sub"):
            raise OAuthError("id_token and access token name different subjects", 502)
        nonce_source = id_claims
    nonce = nonce_source.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, state.nonce):
        raise OAuthError("nonce mismatch: the token was not issued for this login", 400)
    return Tokens(claims, access_token, id_token, float(claims["exp"]))


def end_session_url(app: AppConfig, id_token_hint: str) -> str:
    """RP-initiated logout (OIDC RP-Initiated Logout §2) at the core; the external host if none is known."""
    if not app.oidc.end_session_endpoint:
        return app.external_host
    query = urlencode({"id_token_hint": id_token_hint}) if id_token_hint else ""
    if not query:
        return app.oidc.end_session_endpoint
    separator = "&" if "?" in app.oidc.end_session_endpoint else "?"
    return app.oidc.end_session_endpoint + separator + query
