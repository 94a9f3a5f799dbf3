"""The proxy outpost's authorization pipeline: every forward-auth and proxy-mode request takes the same four
steps, in this order, and nothing decides outside them (DESIGN.md §2 "Forward auth"):

1. **parse** (pure): the request target and the application. ``parse_forward`` reads the flavour's forwarded
   headers (only from a trusted proxy, THREATS 2), ``parse_proxy`` proxy mode's own request line. A request
   without a usable target or application raises ``Refused``, which carries its answer.
2. **authenticate**: the signed cookie's session, else (``intercept_header_auth``) the identity that an
   ``Authorization`` Bearer/Basic header proves (header_auth.py). An identity provider that cannot be asked is
   a typed error (``HeaderAuthError``) kept in the ``Authentication``: it is an input of decide(), not an answer.
3. **decide** (pure): ``decide(Request, client_id=, access=)`` -> ``Verdict``. Every input is a value in
   ``Request``: the target, the request class, the skip rule's match, the identity, the clock, whether
   credentials were sent, whether the identity provider failed.
4. **respond**: ``RESPONSES[(flavour, verdict)]``, a table over the flavours traefik, caddy, nginx, envoy and
   proxy (proxy mode answers ALLOW by streaming the upstream and sends logins through /start).

Authorization happens on every request, per application (THREATS 8, 12): the session must have been issued
for *this* application's client_id, must be unexpired, and the user must still be allowed by the
application's ``access`` description (protocols/proxy_provider.py) in the current snapshot. Every error path
answers 4xx/5xx, never 2xx (THREATS 1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict

from outpost.proxy import header_auth, login, upstream
from outpost.proxy import headers as hdr
from outpost.proxy.apps import AppConfig, Apps, UnknownHost, no_app_body
from outpost.proxy.session import Session
from outpost.proxy.state import Authentication, ProxyOutpost
from protocols import forward as fw
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

__all__ = ["Access", "AccessError", "Identity", "Refused", "Request", "Verdict", "decide", "forward_auth",
           "proxy_mode"]

LOGGER = logging.getLogger("gatehouse.outpost.proxy")
PROXY = "proxy"  # proxy mode's flavour
FLAVOURS = (*fw.FLAVOURS, PROXY)


# -- 1. parse (pure) -------------------------------------------------------------------------------------------

class Refused(Exception):
    """A request answered before authentication: no usable target, no such application, an untrusted peer.
    ``log`` is the line to log (level, message) or None."""

    def __init__(self, status: int, text: str = "", *, json: dict | None = None,
                 log: tuple[int, str] | None = None):
        super().__init__(text or status)
        self.status, self.text, self.json, self.log = status, text, json, log

    def answer(self) -> web.Response:
        if self.log is not None:
            LOGGER.log(*self.log)
        if self.json is not None:
            return web.json_response(self.json, status=self.status)
        return login.text(self.status, self.text)


NOT_CONFIGURED = ("outpost has no configuration from the core yet: it answers once it has fetched it from "
                  "AUTHENTIK_HOST (its log says why it has not)")


def require_configuration(outpost: ProxyOutpost) -> None:
    """Before the first configuration from the core the outpost knows no application: 503, so that the reverse
    proxy (and a person) sees a passing unavailability, not a 400 "no application for this host". Raises
    Refused."""
    if not outpost.configured:
        raise Refused(503, NOT_CONFIGURED)


@dataclass(frozen=True)
class Parsed:
    flavour: str  # a key of fw.FLAVOURS, or PROXY
    app: AppConfig
    target: Target
    skip_match: bool  # the application's skip rule (unauthenticated paths) matches the target
    scheme: str = "http"  # proxy mode: the client's scheme (X-Forwarded-Proto from a trusted proxy)


def parse_forward(apps: Apps, route_flavour: str, *, headers: Mapping[str, str], raw_path: str, query: str,
                  method: str, host: str, peer_trusted: bool, remote: str | None) -> Parsed:
    """The target a reverse proxy forwards to ``/outpost.goauthentik.io/auth/<route_flavour>``, and its
    application. Raises Refused."""
    flavour = "envoy" if route_flavour.startswith("envoy") else route_flavour
    if flavour not in fw.FLAVOURS:
        raise Refused(404, f"unknown forward-auth flavour {flavour!r}")
    envoy_scheme = "http"
    if flavour == "envoy":
        for scheme in ("https", "http"):
            try:
                envoy_scheme = apps.lookup(host, scheme).scheme
                break
            except UnknownHost:
                continue
    auth_request = fw.AuthRequest(path=raw_path.split("?", 1)[0], query=query, method=method, host=host,
                                  scheme=envoy_scheme)
    try:
        target = fw.extract_target(flavour, headers, auth_request, peer_trusted=peer_trusted)
    except fw.UntrustedPeer as exc:
        raise Refused(400, "bad request: forwarded headers from an untrusted peer", log=(
            logging.WARNING, f"forward auth from untrusted peer {remote} refused: {exc}")) from exc
    except fw.TargetError as exc:
        raise Refused(exc.status, "configuration error" if exc.status == 500 else f"bad request: {exc}",
                      log=(logging.ERROR, f"configuration_error: {exc}")) from exc
    try:
        app = apps.lookup(target.host.netloc, target.scheme)
    except UnknownHost as exc:
        raise Refused(400, json=no_app_body(exc.host)) from exc
    if _routed_elsewhere(apps, flavour, host, app, target.scheme):
        raise Refused(400, "bad request: the forwarded host names another application than the Host header", log=(
            logging.WARNING, f"forward auth refused: Host {host!r} is another application than "
                             f"X-Forwarded-Host {target.host.netloc!r}"))
    return Parsed(flavour, app, target, app.skip.match_target(target, full_url=app.domain_mode))


def _routed_elsewhere(apps: Apps, flavour: str, host: str, app: AppConfig, scheme: str) -> bool:
    """Caddy's ``forward_auth`` keeps the client's ``Host`` (the host Caddy routed the request on), while
    ``X-Forwarded-Host`` is the client's own value whenever Caddy trusts the client's network (the seeds'
    ``trusted_proxies private_ranges``: every intranet client). When ``Host`` names one of our applications,
    the forwarded host must name the same one, else a session for application B would open application A's
    upstream (THREATS 2; found by tests/e2e/test_threats_live.py). A ``Host`` that is no application of ours
    (an outer proxy that rewrote it, Caddy's ``header_up Host``) changes nothing."""
    if flavour != "caddy" or not host:
        return False
    try:
        routed = apps.lookup(host, scheme)
    except UnknownHost:
        return False
    return routed.client_id != app.client_id


def proxy_app(apps: Apps, *, host: str, secure: bool, headers: Mapping[str, str],
              peer_trusted: bool) -> tuple[AppConfig | None, str, str]:
    """(application, host, scheme) for a proxied request: ``X-Forwarded-Host`` / ``-Proto`` count only from a
    trusted proxy (authentik's lookupApp prefers X-Forwarded-Host)."""
    scheme = "https" if secure else "http"
    if peer_trusted:
        forwarded_host = headers.getall("X-Forwarded-Host", [])
        forwarded_proto = headers.getall("X-Forwarded-Proto", [])
        if len(forwarded_host) == 1 and forwarded_host[0]:
            host = forwarded_host[0]
        if len(forwarded_proto) == 1 and forwarded_proto[0].strip().lower() in ("http", "https"):
            scheme = forwarded_proto[0].strip().lower()
    for candidate in (scheme, "https" if scheme == "http" else "http"):
        try:
            return apps.lookup(host, candidate), host, scheme
        except UnknownHost:
            continue
    return None, host, scheme


def parse_proxy(apps: Apps, *, host: str, secure: bool, headers: Mapping[str, str], peer_trusted: bool,
                raw_path: str, method: str) -> Parsed:
    """Proxy mode: the application of the request's host and its own request target. Raises Refused."""
    app, host, scheme = proxy_app(apps, host=host, secure=secure, headers=headers, peer_trusted=peer_trusted)
    if app is None or app.mode != "proxy":
        raise Refused(400, json=no_app_body(host))
    try:
        target = fw.from_request_target(app.scheme, app.host, raw_path, method)
    except fw.TargetError as exc:
        raise Refused(exc.status, f"bad request: {exc}") from exc
    return Parsed(PROXY, app, target, app.skip.match_target(target, full_url=False), scheme)


# -- 2. authenticate -------------------------------------------------------------------------------------------

async def authenticate(outpost: ProxyOutpost, app: AppConfig, request: web.Request, *,
                       use_header: bool = True) -> Authentication:
    """The application's session for this request: the signed cookie first, then (when the provider intercepts
    header auth and ``use_header``) ``Authorization`` Bearer/Basic. An identity provider that cannot be asked
    is logged and kept in ``idp_error`` (then no identity and no credentials count)."""
    cookie_id = outpost.cookie_id(app, request.cookies.get(app.cookie_name))
    session = await outpost.store.get(cookie_id) if cookie_id else None
    if session is not None and session.client_id != app.client_id:
        session = None  # THREATS 8: a session of another application is no session here
    auth = Authentication(cookie_id, session)
    if session is None and use_header and app.intercept_header_auth:
        values = request.headers.getall("Authorization", [])
        if len(values) == 1 and header_auth.parse_authorization(values[0]) is not None:
            try:
                if outpost.http is None:
                    raise header_auth.HeaderAuthError("no HTTP client configured")
                found = await header_auth.authenticate(app, outpost.http, outpost.jwks, outpost.header_cache,
                                                       values[0])
            except header_auth.HeaderAuthError as exc:
                LOGGER.warning("header authentication for %s failed: %s", app.name, exc)
                return Authentication(cookie_id, None, idp_error=exc)
            auth.credentials_sent = True
            if found is not None and found.client_id == app.client_id:
                auth.session, auth.header_auth = found, True
        elif len(values) > 1:
            auth.credentials_sent = True  # ambiguous: never authenticates, and gets a 401 rather than a login
    return auth


# -- 3. decide (pure) ------------------------------------------------------------------------------------------

class Verdict(Enum):
    ALLOW = "allow"  # 200 / proxy, with identity headers
    ALLOW_UNAUTHENTICATED_PATH = "allow_unauthenticated_path"  # 200 / proxy, without identity headers
    LOGIN_REDIRECT = "login_redirect"  # 302 into the login (Traefik/Caddy/Envoy: authorize; proxy: /start)
    UNAUTHORIZED_401 = "unauthorized"  # nginx (its config maps 401 to /start), XHR/JSON/preflight
    CREDENTIALS_REFUSED_401 = "credentials_refused"  # Bearer/Basic sent but no identity: 401 + WWW-Authenticate
    FORBIDDEN_403 = "forbidden"  # signed in, but the user may not use this application (now)
    IDENTITY_INCOMPLETE = "identity_incomplete"  # signed in, but the claims name no one: 500, never 2xx
    IDP_ERROR = "idp_error"  # the identity provider could not judge the Authorization header: 502
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


def identity_of(session: Session | None) -> Identity | None:
    """What decide() looks at in a session."""
    if session is None:
        return None
    return Identity(session.client_id, session.sub, session.expires_at, session.username)


@dataclass(frozen=True)
class Request:
    """Everything decide() looks at, as plain values."""

    flavour: str  # "traefik" | "caddy" | "nginx" | "envoy" | "proxy"
    target: Target | TargetError
    request_class: RequestClass
    skip_match: bool  # the application's skip rule matches (an unauthenticated path)
    identity: Identity | None
    now: float
    credentials_sent: bool = False  # Bearer/Basic credentials were examined (a client that cannot log in)
    idp_failed: bool = False  # the identity provider could not be asked about them


def decide(request: Request, *, client_id: str, access: Access | None) -> Verdict:
    """The verdict for one request to the application whose OAuth client is ``client_id``.

    Order: unusable target -> an identity provider that failed (502, except on an unauthenticated path, which
    needs no identity) -> markers (callback, sign-out) -> a valid session for this application (FORBIDDEN_403
    when the access lists refuse it, IDENTITY_INCOMPLETE when its claims carry no username -- a 2xx always names
    the user, DESIGN.md §2 -- else ALLOW; an unauthenticated path is served either way) -> unauthenticated path
    -> 401 for clients that sent credentials (with WWW-Authenticate), cannot follow a redirect, and for nginx ->
    login redirect. A target path under /outpost.goauthentik.io gets no special pass (THREATS 2)."""
    target = request.target
    if isinstance(target, TargetError):
        return Verdict.CONFIG_ERROR if isinstance(target, MissingTarget) else Verdict.BAD_REQUEST
    if request.idp_failed and not request.skip_match:
        return Verdict.IDP_ERROR
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
    if request.credentials_sent:
        return Verdict.CREDENTIALS_REFUSED_401  # authentik's intercept_header_auth: no login redirect
    if request.request_class is RequestClass.API or request.flavour == "nginx":
        return Verdict.UNAUTHORIZED_401
    return Verdict.LOGIN_REDIRECT


# -- 4. respond: (flavour, verdict) -> answer ------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One request after decide(): what a responder may use."""

    outpost: ProxyOutpost
    request: web.Request
    parsed: Parsed
    auth: Authentication


Responder = Callable[[Step], Awaitable[web.StreamResponse]]


_ANONYMOUS = CIMultiDict(hdr.empty_identity_headers())


async def _identity_200(step: Step) -> web.StreamResponse:
    session = step.auth.session
    assert session is not None
    headers = step.outpost.identity_answer(step.parsed.app, session, stored=not step.auth.header_auth)
    return web.Response(status=200, headers=headers)  # copies the (cached) headers


async def _anonymous_200(step: Step) -> web.StreamResponse:
    return web.Response(status=200, headers=_ANONYMOUS)


async def _authorize_302(step: Step) -> web.StreamResponse:
    return login.start_login(step.parsed.app, step.auth, step.parsed.target.url)


async def _start_302(step: Step) -> web.StreamResponse:
    """Proxy mode sends a browser through /start on the application's own host (reference §2.4)."""
    app, target = step.parsed.app, step.parsed.target
    redirect = fw.redirect_for_start(app.external_host, target, target.path, domain_mode=app.domain_mode,
                                     cookie_domain=app.cookie_domain)
    return login.redirect(fw.start_location(app.external_host, redirect))


async def _upstream(step: Step) -> web.StreamResponse:
    return await upstream.forward(step.outpost, step.request, step.parsed.app, step.auth, with_identity=False,
                                  target=step.parsed.target, scheme=step.parsed.scheme)


async def _upstream_with_identity(step: Step) -> web.StreamResponse:
    return await upstream.forward(step.outpost, step.request, step.parsed.app, step.auth, with_identity=True,
                                  target=step.parsed.target, scheme=step.parsed.scheme)


async def _callback(step: Step) -> web.StreamResponse:
    query = dict(parse_qsl(step.parsed.target.query, keep_blank_values=True))
    return await login.complete_login(step.outpost, step.parsed.app, step.auth, query)


async def _sign_out(step: Step) -> web.StreamResponse:
    return await login.sign_out(step.outpost, step.parsed.app, step.auth)


async def _nameless(step: Step) -> web.StreamResponse:
    return login.nameless(step.parsed.app)


async def _forbidden(step: Step) -> web.StreamResponse:
    app = step.parsed.app
    return login.text(403, f"access to {app.app_name or app.name!r} denied")


async def _unauthorized(step: Step) -> web.StreamResponse:
    return login.text(401, "unauthorized request")


async def _credentials_refused(step: Step) -> web.StreamResponse:
    response = login.text(401, "unauthorized request")
    response.headers["WWW-Authenticate"] = 'Bearer realm="authentik", error="invalid_token"'
    return response


def _fixed(status: int, message: str) -> Responder:
    async def answer(step: Step) -> web.StreamResponse:
        return login.text(status, message)
    return answer


FORWARD_ANSWERS: dict[Verdict, Responder] = {
    Verdict.ALLOW: _identity_200,
    Verdict.ALLOW_UNAUTHENTICATED_PATH: _anonymous_200,
    Verdict.LOGIN_REDIRECT: _authorize_302,
    Verdict.UNAUTHORIZED_401: _unauthorized,
    Verdict.CREDENTIALS_REFUSED_401: _credentials_refused,
    Verdict.FORBIDDEN_403: _forbidden,
    Verdict.IDENTITY_INCOMPLETE: _nameless,
    Verdict.IDP_ERROR: _fixed(502, "identity provider error"),
    Verdict.HANDLE_CALLBACK: _callback,
    Verdict.HANDLE_SIGN_OUT: _sign_out,
    Verdict.BAD_REQUEST: _fixed(400, "bad request"),
    Verdict.CONFIG_ERROR: _fixed(500, "configuration error"),
}
PROXY_ANSWERS: dict[Verdict, Responder] = FORWARD_ANSWERS | {
    Verdict.ALLOW: _upstream_with_identity,
    Verdict.ALLOW_UNAUTHENTICATED_PATH: _upstream,
    Verdict.LOGIN_REDIRECT: _start_302,
}
RESPONSES: dict[tuple[str, Verdict], Responder] = {
    **{(flavour, verdict): answer for flavour in fw.FLAVOURS for verdict, answer in FORWARD_ANSWERS.items()},
    **{(PROXY, verdict): answer for verdict, answer in PROXY_ANSWERS.items()},
}


# -- the pipeline ----------------------------------------------------------------------------------------------

async def _run(outpost: ProxyOutpost, request: web.Request, parsed: Parsed) -> web.StreamResponse:
    """Steps 2-4 for a parsed request."""
    app, target = parsed.app, parsed.target
    auth = await authenticate(outpost, app, request)
    verdict = decide(Request(parsed.flavour, target, fw.classify(target.method, request.headers),
                             parsed.skip_match, identity_of(auth.session), time.time(),
                             credentials_sent=auth.credentials_sent, idp_failed=auth.idp_error is not None),
                     client_id=app.client_id, access=app.access)
    return await RESPONSES[(parsed.flavour, verdict)](Step(outpost, request, parsed, auth))


async def forward_auth(outpost: ProxyOutpost, request: web.Request, route_flavour: str) -> web.StreamResponse:
    """A reverse proxy's auth request: ``/outpost.goauthentik.io/auth/<route_flavour>``."""
    try:
        require_configuration(outpost)
        parsed = parse_forward(outpost.apps, route_flavour, headers=request.headers, raw_path=request.raw_path,
                               query=request.rel_url.raw_query_string, method=request.method, host=request.host,
                               peer_trusted=outpost.peer_trusted(request), remote=request.remote)
    except Refused as refused:
        return refused.answer()
    return await _run(outpost, request, parsed)


async def proxy_mode(outpost: ProxyOutpost, request: web.Request) -> web.StreamResponse:
    """A request to a proxy-mode application, decided and (when allowed) streamed to its upstream."""
    try:
        require_configuration(outpost)
        parsed = parse_proxy(outpost.apps, host=request.host, secure=request.secure, headers=request.headers,
                             peer_trusted=outpost.peer_trusted(request), raw_path=request.raw_path,
                             method=request.method)
    except Refused as refused:
        return refused.answer()
    return await _run(outpost, request, parsed)
