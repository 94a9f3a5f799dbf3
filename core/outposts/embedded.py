"""The embedded outpost: the proxy outpost inside ``ak server`` (reference §1.1 "Embedded outpost").

It is the same code as a standalone outpost and talks to its own core the same way, over loopback
HTTP and the websocket, with the embedded outpost's managed token; so one path is tested for both.
Browser-facing endpoints use the outpost's ``config.authentik_host`` (set it to the URL browsers use).
RADIUS and LDAP providers bound to it are served too (``setup_embedded`` in outpost/radius/__init__.py and
outpost/ldap/server.py): their listeners open once the first one is bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from asgiref.sync import sync_to_async
from django.db import DatabaseError

from outpost import metrics as om
from outpost.config import Listen, OutpostConfig
from outpost.core_link import CoreLink
from protocols.version import VERSION

LOGGER = logging.getLogger("gatehouse.outpost.embedded")
TOKEN_RETRY = 2.0


def _embedded_token() -> str | None:
    from django.db import close_old_connections

    from core.accounts.models import Token
    from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost

    close_old_connections()
    try:
        outpost = Outpost.objects.filter(managed=EMBEDDED_OUTPOST_MANAGED).first()
        if outpost is None:
            return None
        token = Token.objects.filter(identifier=outpost.token_identifier).first()
        return token.readable_key if token else None
    finally:
        close_old_connections()


def _store(config):
    from outpost.proxy.session import MemoryStore, RedisStore

    if config.redis:
        from protocols.redis_url import async_client

        return RedisStore(async_client(config.redis.url))
    return MemoryStore(config.data_dir / "proxy-sessions.json")


def outpost_config_of(config) -> OutpostConfig:
    """The embedded outpost's OutpostConfig from the core's CoreConfig: the core over loopback HTTP, and the
    core's settings where the outpost has the same one (trusted proxies, log level, Redis, listeners)."""
    listen = config.listen_http
    host = "127.0.0.1" if listen.host in ("0.0.0.0", "", "::") else listen.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    return OutpostConfig(
        authentik_host=f"http://{host}:{listen.port}/", token="", log_level=config.log_level,
        listen_http=Listen(config.listen_http.host, config.listen_http.port),
        listen_https=Listen(config.listen_https.host, config.listen_https.port),
        listen_metrics=Listen(config.listen_metrics.host, config.listen_metrics.port),
        listen_ldap=Listen(config.listen_ldap.host, config.listen_ldap.port),
        listen_ldaps=Listen(config.listen_ldaps.host, config.listen_ldaps.port),
        listen_radius=Listen(config.listen_radius.host, config.listen_radius.port),
        listen_radius_accounting=Listen(config.listen_radius_accounting.host, config.listen_radius_accounting.port),
        trusted_proxy_cidrs=tuple(config.trusted_proxy_cidrs),
        redis_url=config.redis.url if config.redis else None, state_dir=str(config.data_dir))


def setup(app: web.Application, config) -> None:
    """``config`` is the core's CoreConfig. Registers the outpost routes before the Django catch-all."""
    from outpost.app import PING, ping
    from outpost.proxy import setup as proxy_setup
    from outpost.proxy.reverse import proxy_mode_hosts

    outpost_config = outpost_config_of(config)
    link = CoreLink(outpost_config.authentik_host, token="", kind="proxy")

    async def connect_when_ready() -> None:
        """The database may not be migrated or reachable yet (readiness says so): keep looking."""
        while True:
            try:
                token = await sync_to_async(_embedded_token, thread_sensitive=False)()
            except DatabaseError as exc:
                LOGGER.info("embedded outpost waits for the database", extra={"reason": str(exc)})
                token = None
            if token:
                link.token = token
                await link.start()  # the first attempt may precede the listener; the link retries
                return
            await asyncio.sleep(TOKEN_RETRY)

    async def link_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(connect_when_ready())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await link.close()

    app.cleanup_ctx.append(link_ctx)
    # authentik's embedded outpost answers its health path on the core's port too (reference §1.4): the
    # configs' health checks and the proxies' readiness probes use it.
    app.router.add_get(PING, ping)
    # authentik's embedded outpost reports its outpost metrics on the core's metrics listener too.
    om.registry_of(app).register(om.LinkCollector(link, "proxy", VERSION))
    store, http_factory = om.instrument_proxy(app, link, _store(config))
    proxy_setup(app, outpost_config, store=store, link=link, http_factory=http_factory)
    # RADIUS providers bound to the embedded outpost: ak server answers them too (issue 10).
    from outpost.radius import setup_embedded

    setup_embedded(app, link, config.listen_radius, config.listen_radius_accounting)
    # LDAP providers bound to it likewise (issue 9).
    from outpost.ldap.server import setup_embedded as setup_ldap_embedded

    setup_ldap_embedded(app, link, outpost_config.listen_ldap, outpost_config.listen_ldaps,
                        outpost_config.trusted_proxy_cidrs)
    # Proxy-mode applications of the embedded outpost: requests for their hosts are proxied, not served by
    # the core (as authentik's embedded outpost does); every other host goes on to Django.
    app.middlewares.append(proxy_mode_hosts)
