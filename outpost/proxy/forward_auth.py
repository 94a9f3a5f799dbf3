"""aiohttp handlers: forward auth for each flavour, /start, /callback, /sign_out (DESIGN.md §2, reference §2.3-2.5).

Thin: parse the target (protocols.forward), find the application, load the session, ``decide()``, then turn
the Verdict into a response. Every error path answers 4xx/5xx (THREATS 1).

* Traefik/Caddy/nginx read forwarded headers, so they are answered only for a peer in the trusted proxy
  networks (``ProxyOutpost.trusted``); any other peer gets 400 (THREATS 2).
* The session is the signed cookie's, else (``intercept_header_auth``) the identity an ``Authorization``
  Bearer/Basic header proves (header_auth.py). Refused credentials -> 401 (not a login redirect); an IdP that
  cannot be asked -> 502, except on an unauthenticated path. Either way ``decide()`` runs on every request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from outpost.proxy import header_auth, oauth
from outpost.proxy import headers as hdr
from outpost.proxy.apps import AppConfig, Apps, UnknownHost, no_app_body
from outpost.proxy.policy import Identity, Request, Verdict, decide
from outpost.proxy.session import (
    Session,
    SessionStore,
    cookie_attributes,
    new_session_id,
    sign_cookie,
    unsign_cookie,
)
from protocols import forward as fw
from protocols import trust
from protocols.version import VERSION

LOGGER = logging.getLogger("gatehouse.outpost.proxy")
PEER_CACHE = 1024  # peer addresses whose trust is remembered (parsing one costs more than the rest of a lookup)


@dataclass
class ProxyOutpost:
    """Everything the handlers need; one per aiohttp app (stored under OUTPOST_KEY)."""

    store: SessionStore
    http: aiohttp.ClientSession | None = None
    apps: Apps = field(default_factory=lambda: Apps(()))
    version: str = VERSION  # X-authentik-meta-version
    jwks: oauth.JWKSCache = field(default_factory=oauth.JWKSCache)
    trusted: trust.TrustedNetworks = field(default_factory=trust.TrustedNetworks.parse)
    header_cache: header_auth.HeaderAuthCache = field(default_factory=header_auth.HeaderAuthCache)
    # Refetch the configuration from the core (CoreLink.refresh: waits for a fetch that starts after the
    # call); None when not linked (unit tests).
    refresh: Callable[[], Awaitable[Any]] | None = None
    # AUTHENTIK_INSECURE: the HTTP client accepts any certificate from the core (token endpoint, JWKS,
    # introspection), so upstreams that must be verified get an explicit verifying context (upstream_ssl).
    insecure_core: bool = False
    _verified: ssl.SSLContext | None = field(default=None, init=False, repr=False)
    _peers: dict[str | None, bool] = field(default_factory=dict, init=False, repr=False)  # peer_trusted's
    _peers_of: trust.TrustedNetworks | None = field(default=None, init=False, repr=False)

    def update(self, providers, *, outpost_name: str = "") -> Apps:
        """Swap in the applications of a new snapshot atomically; report broken providers and skip rules."""
        apps = Apps.from_snapshot(providers, outpost_name=outpost_name)
        for error in apps.errors:
            LOGGER.error("provider not served: %s", error)
        for config in apps.configs:
            for error in config.skip.errors:
                LOGGER.error("provider %r: %s (this line never matches)", config.name, error)
            if hdr.USERNAME_SCOPE not in config.scopes:
                LOGGER.warning("provider %r does not request the %r scope: its logins will name no one and be "
                               "answered 500; give it the default scope mappings", config.name, hdr.USERNAME_SCOPE)
        self.apps = apps
        self.jwks = oauth.JWKSCache()
        self.header_cache.clear()  # secrets or endpoints may have changed; identities are re-checked
        return apps

    async def end_session(self, sid: str) -> int:
        """SESSION_END from the core: the core session ``sid`` ended (THREATS 12). Cookie sessions and cached
        header identities of that session both go."""
        self.header_cache.forget_sid(sid)
        return await self.store.delete_by_sid(sid)

    def upstream_ssl(self, app: AppConfig) -> bool | ssl.SSLContext:
        """aiohttp's ``ssl=`` for a request to ``app``'s upstream: its ``internal_host_ssl_validation``, made
        explicit when the client's default accepts any certificate (AUTHENTIK_INSECURE)."""
        if not app.internal_host_ssl_validation:
            return False
        if not self.insecure_core:
            return True
        if self._verified is None:
            self._verified = ssl.create_default_context()
        return self._verified

    def peer_trusted(self, request: web.Request) -> bool:
        """Is the direct peer a trusted reverse proxy (may its forwarded headers be used)? Remembered per
        peer address (a few reverse proxies ask every time) for the current ``trusted``; at most PEER_CACHE
        addresses, then forgotten all at once."""
        remote = request.remote
        if self._peers_of is not self.trusted:
            self._peers.clear()
            self._peers_of = self.trusted
        known = self._peers.get(remote)
        if known is None:
            if len(self._peers) >= PEER_CACHE:
                self._peers.clear()
            known = self._peers[remote] = self.trusted.contains(remote)
        return known


OUTPOST_KEY = web.AppKey("proxy_outpost", ProxyOutpost)


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def _nameless(app: AppConfig) -> web.Response:
    """A login whose claims name no one: 500 and one log line naming the provider and the missing scope."""
    LOGGER.error("%s", hdr.missing_username(app))
    return _text(500, "configuration error: the login carries no username")


@dataclass
class Context:
    outpost: ProxyOutpost
    app: AppConfig
    cookie_id: str | None = field(repr=False)  # the verified id in this app's cookie (a session or a pre-login id)
    session: Session | None
    header_auth: bool = False  # the session comes from the Authorization header (not stored, no cookie)
    credentials_sent: bool = False  # the client sent Bearer/Basic credentials we examined


async def _context(outpost: ProxyOutpost, request: web.Request, app: AppConfig, *,
                   use_header: bool = True) -> Context:
    """The application's session for this request: the signed cookie first, then (when the provider
    intercepts header auth) ``Authorization`` Bearer/Basic (header_auth). Raises HeaderAuthError."""
    cookie_id = unsign_cookie(request.cookies.get(app.cookie_name), cookie_secret=app.cookie_secret,
                              client_id=app.client_id)
    session = await outpost.store.get(cookie_id) if cookie_id else None
    if session is not None and session.client_id != app.client_id:
        session = None  # THREATS 8: a session of another application is no session here
    ctx = Context(outpost, app, cookie_id, session)
    if session is None and use_header and app.intercept_header_auth:
        values = request.headers.getall("Authorization", [])
        if len(values) == 1 and header_auth.parse_authorization(values[0]) is not None:
            ctx.credentials_sent = True
            if outpost.http is None:
                raise header_auth.HeaderAuthError("no HTTP client configured")
            found = await header_auth.authenticate(app, outpost.http, outpost.jwks, outpost.header_cache, values[0])
            if found is not None and found.client_id == app.client_id:
                ctx.session, ctx.header_auth = found, True
        elif len(values) > 1:
            ctx.credentials_sent = True  # ambiguous: never authenticates, and gets a 401 rather than a login
    return ctx


async def context_or_error(outpost: ProxyOutpost, request: web.Request, app: AppConfig, *,
                           skip_match: bool) -> Context | web.Response:
    """``_context``, with an IdP failure during header auth answered 502 (never 2xx) -- except on an
    unauthenticated path, which needs no identity: there the request continues without one."""
    try:
        return await _context(outpost, request, app)
    except header_auth.HeaderAuthError as exc:
        LOGGER.warning("header authentication for %s failed: %s", app.name, exc)
        if skip_match:
            return await _context(outpost, request, app, use_header=False)
        return _text(502, "identity provider error")


def _set_cookie(response: web.StreamResponse, app: AppConfig, session_id: str, max_age: int | None) -> None:
    response.set_cookie(app.cookie_name, sign_cookie(session_id, cookie_secret=app.cookie_secret,
                                                     client_id=app.client_id),
                        **cookie_attributes(secure=app.secure, cookie_domain=app.cookie_domain, max_age=max_age))


def _clear_cookie(response: web.StreamResponse, app: AppConfig) -> None:
    response.del_cookie(app.cookie_name, path="/", domain=app.cookie_domain or None)


def _login(ctx: Context, redirect: str) -> web.Response:
    """302 into the core's authorize endpoint, the login bound to the browser's signed cookie.

    A browser with a live session keeps its cookie untouched (authentik's /start adds the login state to the
    session it has): a start link (a bookmark, a second tab, another site's link) never signs the user out;
    a login that completes replaces the session (``_callback``), an abandoned one leaves it. Should the
    cookie (its Max-Age is the token's) expire before the login can come back, the same value is re-sent for
    STATE_TTL: the binding survives, and an expired session still counts for nothing (decide() reads its
    expiry). Any other browser keeps its pre-login id (or gets a new one) for STATE_TTL."""
    app = ctx.app
    session = ctx.session
    if ctx.cookie_id and session is not None and not ctx.header_auth and not session.expired():
        response = _redirect(oauth.authorize_url(app, ctx.cookie_id, redirect))
        if session.expires_at - time.time() < oauth.STATE_TTL:
            _set_cookie(response, app, ctx.cookie_id, oauth.STATE_TTL)
        return response
    prelogin = ctx.cookie_id or new_session_id()
    response = _redirect(oauth.authorize_url(app, prelogin, redirect))
    _set_cookie(response, app, prelogin, oauth.STATE_TTL)
    return response


async def _callback(ctx: Context, query: dict[str, str]) -> web.StreamResponse:
    app = ctx.app
    try:
        state = oauth.parse_state(app, query.get("state"), ctx.cookie_id)
        if ctx.outpost.http is None:
            raise oauth.OAuthError("no HTTP client configured", 500)
        tokens = await oauth.redeem(app, ctx.outpost.http, ctx.outpost.jwks, code=query.get("code"), state=state,
                                    prelogin_id=state.sid)
    except oauth.OAuthError as exc:
        LOGGER.warning("login callback refused for %s: %s", app.name, exc)
        response = _text(exc.status, "login failed; start again from the application" if exc.status == 400
                         else "identity provider error")
        return response
    session = Session(new_session_id(), app.client_id, tokens.claims, tokens.access_token, tokens.id_token,
                      expires_at=tokens.expires_at)  # a fresh id: the pre-login id is never promoted (THREATS 7)
    if not session.username:  # never stored: once the provider is fixed, the next attempt is a fresh login
        return _nameless(app)
    await ctx.outpost.store.put(session)
    if ctx.session is not None and not ctx.header_auth:
        await ctx.outpost.store.delete(ctx.session.id)  # the session this login replaces (/start while signed in)
    await _catch_up(ctx, session)
    try:
        target = fw.validate_redirect(state.redirect, app.external_host, cookie_domain=app.cookie_domain,
                                      domain_mode=app.domain_mode) if state.redirect else app.external_host
    except fw.RedirectRefused:
        target = app.external_host
    response = _redirect(target)
    _set_cookie(response, app, session.id, int(tokens.expires_at - time.time()))
    return response


CATCH_UP_TIMEOUT = 3.0


async def _catch_up(ctx: Context, session: Session) -> None:
    """The core approved this login at /authorize, but the outpost's access lists may predate it (a user
    created or added to the group a moment ago): refetch once, bounded, so the first request after the login
    is decided on a configuration at least as new as the login. Only for subjects the lists don't allow, so
    a normal login costs nothing; the decision itself stays with the (refreshed) lists: fail closed."""
    access = ctx.app.access
    if access is None or access.allows(session.sub) or ctx.outpost.refresh is None:
        return
    try:
        await asyncio.wait_for(ctx.outpost.refresh(), CATCH_UP_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the redirect goes out anyway; the next request decides
        LOGGER.warning("could not refresh the configuration after a login: %s", exc or type(exc).__name__)
    else:
        current = ctx.outpost.apps.by_client_id(ctx.app.client_id)
        if current is not None and current.access is not None and not current.access.allows(session.sub):
            LOGGER.info("login of %r accepted by the core, but %s's access lists do not allow it",
                        session.sub, ctx.app.name)


async def _sign_out(ctx: Context) -> web.StreamResponse:
    """Always ends at the provider's end-session endpoint (the core's invalidation flow), with the
    id_token_hint when this browser has a session here. Without one authentik's outpost starts a new login,
    which succeeds silently while the core session lives: the user who clicked "sign out" stayed signed in."""
    app = ctx.app
    if ctx.session is None or ctx.header_auth:
        response = _redirect(oauth.end_session_url(app, ""))
    else:
        await ctx.outpost.store.delete_by_sub(ctx.session.sub)
        await ctx.outpost.store.delete(ctx.session.id)
        response = _redirect(oauth.end_session_url(app, ctx.session.id_token or ctx.session.raw_token))
    _clear_cookie(response, app)
    return response


def _allow(ctx: Context, headers_list: list[tuple[str, str]]) -> web.Response:
    response = web.Response(status=200)
    for name, value in headers_list:
        response.headers[name] = value
    return response


async def forward_auth(request: web.Request) -> web.StreamResponse:
    """``/outpost.goauthentik.io/auth/{traefik,caddy,nginx,envoy...}``."""
    outpost = request.app[OUTPOST_KEY]
    flavour = request.match_info["flavour"]
    flavour = "envoy" if flavour.startswith("envoy") else flavour
    if flavour not in fw.FLAVOURS:
        return _text(404, f"unknown forward-auth flavour {flavour!r}")
    envoy_scheme = "http"
    if flavour == "envoy":
        for scheme in ("https", "http"):
            try:
                envoy_scheme = outpost.apps.lookup(request.host, scheme).scheme
                break
            except UnknownHost:
                continue
    auth_request = fw.AuthRequest(path=request.raw_path.split("?", 1)[0], query=request.rel_url.raw_query_string,
                                  method=request.method, host=request.host, scheme=envoy_scheme)
    try:
        target = fw.extract_target(flavour, request.headers, auth_request, peer_trusted=outpost.peer_trusted(request))
    except fw.UntrustedPeer as exc:
        LOGGER.warning("forward auth from untrusted peer %s refused: %s", request.remote, exc)
        return _text(400, "bad request: forwarded headers from an untrusted peer")
    except fw.TargetError as exc:
        LOGGER.error("configuration_error: %s", exc)
        return _text(exc.status, "configuration error" if exc.status == 500 else f"bad request: {exc}")
    try:
        app = outpost.apps.lookup(target.host.netloc, target.scheme)
    except UnknownHost as exc:
        return web.json_response(no_app_body(exc.host), status=400)
    if _routed_elsewhere(outpost, request, flavour, app, target.scheme):
        LOGGER.warning("forward auth refused: Host %r is another application than X-Forwarded-Host %r",
                       request.host, target.host.netloc)
        return _text(400, "bad request: the forwarded host names another application than the Host header")
    skip_match = app.skip.match_target(target, full_url=app.domain_mode)
    ctx = await context_or_error(outpost, request, app, skip_match=skip_match)
    if isinstance(ctx, web.Response):
        return ctx
    verdict = decide(Request(flavour, target, fw.classify(target.method, request.headers), skip_match,
                             identity_of(ctx.session), time.time()), client_id=app.client_id, access=app.access)
    return await respond(ctx, with_credentials(ctx, verdict), target)


def identity_of(session: Session | None) -> Identity | None:
    """What decide() looks at in a session."""
    if session is None:
        return None
    return Identity(session.client_id, session.sub, session.expires_at, session.username)


def _routed_elsewhere(outpost: ProxyOutpost, request: web.Request, flavour: str, app: AppConfig,
                      scheme: str) -> bool:
    """Caddy's ``forward_auth`` keeps the client's ``Host`` (the host Caddy routed the request on), while
    ``X-Forwarded-Host`` is the client's own value whenever Caddy trusts the client's network (the seeds'
    ``trusted_proxies private_ranges``: every intranet client). When ``Host`` names one of our applications,
    the forwarded host must name the same one, else a session for application B would open application A's
    upstream (THREATS 2; found by tests/e2e/test_threats_live.py). A ``Host`` that is no application of ours
    (an outer proxy that rewrote it, Caddy's ``header_up Host``) changes nothing."""
    if flavour != "caddy" or not request.host:
        return False
    try:
        routed = outpost.apps.lookup(request.host, scheme)
    except UnknownHost:
        return False
    return routed.client_id != app.client_id


def with_credentials(ctx: Context, verdict: Verdict) -> Verdict:
    """A client that sent credentials cannot follow a login redirect: refused credentials -> 401 (authentik's
    intercept_header_auth behaviour, reference §2.4)."""
    if verdict is Verdict.LOGIN_REDIRECT and ctx.credentials_sent:
        return Verdict.UNAUTHORIZED_401
    return verdict


async def respond(ctx: Context, verdict: Verdict, target: fw.Target) -> web.StreamResponse:
    app = ctx.app
    if verdict is Verdict.ALLOW:
        assert ctx.session is not None
        return _allow(ctx, hdr.identity_headers(app, ctx.session.claims, ctx.session.raw_token,
                                                ctx.outpost.version))
    if verdict is Verdict.ALLOW_UNAUTHENTICATED_PATH:
        return _allow(ctx, hdr.empty_identity_headers())
    if verdict is Verdict.HANDLE_CALLBACK:
        return await _callback(ctx, dict(parse_qsl(target.query, keep_blank_values=True)))
    if verdict is Verdict.HANDLE_SIGN_OUT:
        return await _sign_out(ctx)
    if verdict is Verdict.IDENTITY_INCOMPLETE:
        return _nameless(app)
    if verdict is Verdict.FORBIDDEN_403:
        return _text(403, f"access to {app.app_name or app.name!r} denied")
    if verdict is Verdict.UNAUTHORIZED_401:
        response = _text(401, "unauthorized request")
        if ctx.credentials_sent:
            response.headers["WWW-Authenticate"] = 'Bearer realm="authentik", error="invalid_token"'
        return response
    if verdict is Verdict.LOGIN_REDIRECT:
        return _login(ctx, target.url)
    if verdict is Verdict.CONFIG_ERROR:
        return _text(500, "configuration error")
    return _text(400, "bad request")


def _direct_app(request: web.Request) -> AppConfig | web.Response:
    """The application for a request made directly to /outpost.goauthentik.io/* (by its Host header)."""
    outpost = request.app[OUTPOST_KEY]
    scheme = "https" if request.secure else "http"
    for candidate in (scheme, "https" if scheme == "http" else "http"):
        try:
            return outpost.apps.lookup(request.host, candidate)
        except UnknownHost:
            continue
    return web.json_response(no_app_body(request.host), status=400)


def start_rd(raw_query: str) -> str | None:
    """The ``rd`` of a /start request. nginx's error_page recipe (configs/nginx, authentik's docs) appends the
    original URL unencoded: ``/start?rd=http://app/x?a=1&b=2``, so a plain query parse would cut it at the
    first ``&`` and lose ``b=2`` after login. A raw absolute URL as the first parameter is therefore taken
    whole (everything after ``rd=``); an encoded one (``rd=https%3A...``) or a later ``rd`` is parsed as usual.
    validate_redirect() still decides whether it may be used."""
    if raw_query.startswith(("rd=http://", "rd=https://")):
        return raw_query[len("rd="):]
    values = [v for k, v in parse_qsl(raw_query, keep_blank_values=True) if k == "rd"]
    return values[0] if values else None


async def start(request: web.Request) -> web.StreamResponse:
    """``/outpost.goauthentik.io/start?rd=...``: ``rd`` is used only if it passes validate_redirect."""
    app = _direct_app(request)
    if isinstance(app, web.Response):
        return app
    redirect = app.external_host
    rd = start_rd(request.rel_url.raw_query_string)
    if rd:
        try:
            redirect = fw.validate_redirect(rd, app.external_host, cookie_domain=app.cookie_domain,
                                            domain_mode=app.domain_mode)
        except fw.RedirectRefused as exc:
            LOGGER.info("rd refused for %s: %s", app.name, exc)
    ctx = await _context(request.app[OUTPOST_KEY], request, app, use_header=False)
    return _login(ctx, redirect)


async def callback(request: web.Request) -> web.StreamResponse:
    app = _direct_app(request)
    if isinstance(app, web.Response):
        return app
    ctx = await _context(request.app[OUTPOST_KEY], request, app, use_header=False)
    return await _callback(ctx, dict(request.query))


async def sign_out(request: web.Request) -> web.StreamResponse:
    app = _direct_app(request)
    if isinstance(app, web.Response):
        return app
    ctx = await _context(request.app[OUTPOST_KEY], request, app, use_header=False)
    return await _sign_out(ctx)
