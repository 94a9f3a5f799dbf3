"""The proxy outpost: forward auth for Traefik/Caddy/nginx/Envoy and the reverse-proxy mode (DESIGN.md §2).

``setup(app, config, store=..., link=...)`` adds the routes and, in ``cleanup_ctx``, the session store and the
HTTP client used for the core's token/JWKS endpoints. ``config`` is the whole typed OutpostConfig
(outpost/config.py): the proxy takes what it needs from it (the trusted proxy networks, AUTHENTIK_INSECURE), so
no setting can be parsed and then not passed. The outpost link feeds it: ``ProxyOutpost.update(providers,
outpost_name=...)`` on every refresh and ``ProxyOutpost.end_session(sid)`` on SESSION_END.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web

from outpost.config import OutpostConfig
from outpost.proxy.forward_auth import OUTPOST_KEY, ProxyOutpost, callback, forward_auth, sign_out, start
from outpost.proxy.session import MemoryStore, SessionStore
from protocols.forward import CALLBACK_PATH, OUTPOST_PREFIX, SIGN_OUT_PATH, START_PATH
from protocols.trust import TrustedNetworks

__all__ = ["OUTPOST_KEY", "ProxyOutpost", "setup"]


def setup(app: web.Application, config: OutpostConfig, *, store: SessionStore | None = None, link: Any = None,
          http_factory: Callable[..., aiohttp.ClientSession] | None = None) -> ProxyOutpost:
    """Register the proxy outpost on ``app`` with ``config`` (required: a standalone outpost's, or the one the
    embedded outpost derives from the core's configuration). Forwarded headers count only from
    ``config.trusted_proxy_cidrs`` (AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS). ``link`` (the CoreLink) is optional:
    when given, its ``snapshot`` seeds the applications and its ``on_refresh`` / ``on_session_end`` callbacks are
    wired. ``http_factory(connector=...)`` makes the HTTP client (outpost/metrics.py traces it); with
    ``config.insecure`` (AUTHENTIK_INSECURE) its connector accepts the core's self-signed certificate, as the link's
    does, while upstreams keep their provider's ``internal_host_ssl_validation``."""
    if not isinstance(config, OutpostConfig):
        raise TypeError(f"proxy setup: config is a {type(config).__name__}; pass the OutpostConfig "
                        "(outpost.config.load(), or OutpostConfig(...) built from the core's settings)")
    outpost = ProxyOutpost(store=store if store is not None else MemoryStore(),
                           trusted=TrustedNetworks.parse(config.trusted_proxy_cidrs), insecure_core=config.insecure)
    app[OUTPOST_KEY] = outpost
    app.router.add_route("*", OUTPOST_PREFIX + "/auth/{flavour:traefik|caddy|nginx}", forward_auth)
    app.router.add_route("*", OUTPOST_PREFIX + "/auth/{flavour:envoy.*}", forward_auth)
    app.router.add_get(START_PATH, start)
    app.router.add_get(CALLBACK_PATH, callback)
    app.router.add_get(SIGN_OUT_PATH, sign_out)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(ssl=False) if config.insecure else None
        outpost.http = http_factory(connector=connector) if http_factory else aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=15), connector=connector)
        await outpost.store.start()
        if link is not None:
            _wire(outpost, link)
        try:
            yield
        finally:
            await outpost.store.close()
            await outpost.http.close()

    app.cleanup_ctx.append(resources)
    return outpost


def _wire(outpost: ProxyOutpost, link: Any) -> None:
    """Connect to the CoreLink: snapshot ``{"outpost": {...}, "providers": [...]}`` (or an object with those
    attributes); ``on_refresh`` / ``on_session_end`` as lists of callbacks or registration functions."""

    def providers_of(snapshot: Any) -> tuple[list, str]:
        get = snapshot.get if isinstance(snapshot, dict) else lambda k, d=None: getattr(snapshot, k, d)
        outpost_info = get("outpost", None) or {}
        name = outpost_info.get("name", "") if isinstance(outpost_info, dict) else getattr(outpost_info, "name", "")
        return list(get("providers", None) or []), name

    def refresh(*_args: Any) -> None:
        snapshot = getattr(link, "snapshot", None)
        if snapshot is None:  # nothing from the core yet: answered 503 until the first snapshot
            outpost.configured = False
            return
        providers, name = providers_of(snapshot)
        outpost.update(providers, outpost_name=name)

    async def session_end(session_id: str, *_args: Any) -> None:
        await outpost.end_session(session_id)

    if callable(getattr(link, "refresh", None)):
        outpost.refresh = link.refresh
    for attr, callback_ in (("on_refresh", refresh), ("on_session_end", session_end)):
        hook = getattr(link, attr, None)
        if isinstance(hook, list):
            hook.append(callback_)
        elif callable(hook):
            hook(callback_)
    refresh()
