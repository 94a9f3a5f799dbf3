"""What the proxy outpost's handlers share: ``ProxyOutpost`` (one per aiohttp app, under ``OUTPOST_KEY``) and
``Authentication``, what the pipeline's authenticate step found (outpost/proxy/pipeline.py)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from outpost.proxy import header_auth, oauth
from outpost.proxy import headers as hdr
from outpost.proxy.apps import AppConfig, Apps
from outpost.proxy.session import Session, SessionStore, unsign_cookie
from protocols import trust
from protocols.version import VERSION

LOGGER = logging.getLogger("gatehouse.outpost.proxy")
PEER_CACHE = 1024  # peer addresses whose trust is remembered (parsing one costs more than the rest of a lookup)
COOKIE_CACHE = 4096  # cookie values whose signature was verified (an HMAC each otherwise)
ANSWER_CACHE = 1024  # (session, application) pairs whose identity headers are kept built (a few KB each)


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
    # False while a linked outpost waits for its first configuration from the core: every request is answered
    # 503 (pipeline.require_configuration), not as if the core had given it no applications (400)
    configured: bool = True
    _verified: ssl.SSLContext | None = field(default=None, init=False, repr=False)
    _peers: dict[str | None, bool] = field(default_factory=dict, init=False, repr=False)  # peer_trusted's
    _peers_of: trust.TrustedNetworks | None = field(default=None, init=False, repr=False)
    _cookies: dict[tuple[str, int], tuple[AppConfig, str]] = field(default_factory=dict, init=False,
                                                                   repr=False)  # cookie_id's
    _answers: dict[tuple[str, int], tuple[AppConfig, CIMultiDict]] = field(default_factory=dict, init=False,
                                                                          repr=False)  # identity_answer's

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
        self.configured = True
        self.jwks = oauth.JWKSCache()
        self.header_cache.clear()  # secrets or endpoints may have changed; identities are re-checked
        self._answers.clear()
        self._cookies.clear()
        return apps

    def cookie_id(self, app: AppConfig, value: str | None) -> str | None:
        """``session.unsign_cookie`` of ``app``'s cookie ``value``, remembered for values that verified (the same
        string always verifies the same way for the same application; a refresh, which may change the secret,
        makes a new AppConfig and empties this). At most COOKIE_CACHE values, then forgotten all at once."""
        if value is None:
            return None
        key = (value, id(app))
        known = self._cookies.get(key)
        if known is not None and known[0] is app:
            return known[1]
        verified = unsign_cookie(value, cookie_secret=app.cookie_secret, client_id=app.client_id)
        if verified is not None:
            if len(self._cookies) >= COOKIE_CACHE:
                self._cookies.clear()
            self._cookies[key] = (app, verified)
        return verified

    def identity_answer(self, app: AppConfig, session: Session, *, stored: bool) -> CIMultiDict:
        """The identity headers of an ALLOW for ``session`` at ``app`` (headers.identity_headers), built once
        per (stored session, application): a stored session's claims never change (a new login is a new id), an
        application's configuration is a new AppConfig after every refresh (which also empties this cache).
        Header-auth sessions (``stored`` false, no id) are built every time. At most ANSWER_CACHE pairs, then
        forgotten all at once. The caller must not change the headers (aiohttp's Response copies them)."""
        if not stored or not session.id:
            return CIMultiDict(hdr.identity_headers(app, session.claims, session.raw_token, self.version))
        key = (session.id, id(app))
        known = self._answers.get(key)
        if known is not None and known[0] is app:
            return known[1]
        if len(self._answers) >= ANSWER_CACHE:
            self._answers.clear()
        headers = CIMultiDict(hdr.identity_headers(app, session.claims, session.raw_token, self.version))
        self._answers[key] = (app, headers)
        return headers

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


@dataclass
class Authentication:
    """Who the request is, as the authenticate step found it."""

    cookie_id: str | None = field(repr=False)  # the verified id in this app's cookie (a session or a pre-login id)
    session: Session | None
    header_auth: bool = False  # the session comes from the Authorization header (not stored, no cookie)
    credentials_sent: bool = False  # the client sent Bearer/Basic credentials we examined
    # The identity provider could not be asked about the Authorization header (decide(): 502, except on an
    # unauthenticated path, where the request goes on without the header's identity).
    idp_error: header_auth.HeaderAuthError | None = None
