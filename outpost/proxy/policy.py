"""The forward-auth / proxy decision: a pure function from what we parsed to a Verdict (DESIGN.md §4 style 2).

Authorization happens on every request, per application (THREATS 8, 12; DESIGN.md "Where we do better"):
the session must have been issued for *this* application's client_id, must be unexpired, and the user must
still be allowed by the application's ``access`` description in the current snapshot.

The ``access`` field (its shape, ``Access`` and ``AccessError``) is the proxy-provider contract in
protocols/proxy_provider.py, shared with the core that computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from protocols.forward import (
    CALLBACK_PARAM,
    LOGOUT_PARAM,
    SIGN_OUT_PATH,
    MissingTarget,
    RequestClass,
    Target,
    TargetError,
)
from protocols.proxy_provider import Access, AccessError

__all__ = ["Access", "AccessError", "Identity", "Request", "Verdict", "decide"]


class Verdict(Enum):
    ALLOW = "allow"  # 200 / proxy, with identity headers
    ALLOW_UNAUTHENTICATED_PATH = "allow_unauthenticated_path"  # 200 / proxy, without identity headers
    LOGIN_REDIRECT = "login_redirect"  # 302 into the login (Traefik/Caddy/Envoy: authorize; proxy: /start)
    UNAUTHORIZED_401 = "unauthorized"  # nginx (its config maps 401 to /start), XHR/JSON/preflight
    FORBIDDEN_403 = "forbidden"  # signed in, but the user may not use this application (now)
    IDENTITY_INCOMPLETE = "identity_incomplete"  # signed in, but the claims name no one: 500, never 2xx
    HANDLE_CALLBACK = "handle_callback"  # the OIDC callback marker is in the target
    HANDLE_SIGN_OUT = "handle_sign_out"  # the logout marker / sign-out path is in the target
    BAD_REQUEST = "bad_request"  # garbage forwarded headers
    CONFIG_ERROR = "config_error"  # the reverse proxy is not sending what its flavour must send


@dataclass(frozen=True)
class Identity:
    """What the decision needs from a session: for which application it was issued, who, until when, and the
    name the identity headers will carry (``preferred_username``; empty when the provider's scopes lack it)."""

    client_id: str
    sub: str
    expires_at: float  # unix time
    username: str


@dataclass(frozen=True)
class Request:
    """Everything decide() looks at, as plain values."""

    flavour: str  # "traefik" | "caddy" | "nginx" | "envoy" | "proxy"
    target: Target | TargetError
    request_class: RequestClass
    skip_match: bool
    identity: Identity | None
    now: float


def decide(request: Request, *, client_id: str, access: Access | None) -> Verdict:
    """The verdict for one request to the application whose OAuth client is ``client_id``.

    Order: unusable target -> markers (callback, sign-out) -> a valid session for this application
    (FORBIDDEN_403 when the access lists refuse it, IDENTITY_INCOMPLETE when its claims carry no username --
    a 2xx always names the user, DESIGN.md §2 -- else ALLOW; an unauthenticated path is served either way)
    -> unauthenticated path -> 401 for clients that cannot follow a redirect and for nginx -> login
    redirect. A target path under /outpost.goauthentik.io gets no special pass (THREATS 2)."""
    target = request.target
    if isinstance(target, TargetError):
        return Verdict.CONFIG_ERROR if isinstance(target, MissingTarget) else Verdict.BAD_REQUEST
    if target.query_flag(CALLBACK_PARAM):
        return Verdict.HANDLE_CALLBACK
    if target.query_flag(LOGOUT_PARAM) or target.path == SIGN_OUT_PATH:
        return Verdict.HANDLE_SIGN_OUT
    identity = request.identity
    valid = (identity is not None and identity.client_id == client_id and bool(identity.sub)
             and identity.expires_at > request.now)
    if valid:
        assert identity is not None
        allowed = access is None or access.allows(identity.sub)
        if allowed and identity.username:
            return Verdict.ALLOW
        if request.skip_match:
            return Verdict.ALLOW_UNAUTHENTICATED_PATH
        return Verdict.IDENTITY_INCOMPLETE if allowed else Verdict.FORBIDDEN_403
    if request.skip_match:
        return Verdict.ALLOW_UNAUTHENTICATED_PATH
    if request.request_class is RequestClass.API or request.flavour == "nginx":
        return Verdict.UNAUTHORIZED_401
    return Verdict.LOGIN_REDIRECT
