"""The RADIUS outpost (issue 10): PAP through the core, Status-Server, accounting answered, BlastRADIUS-safe.
``setup(app, link, config)`` adds the UDP listeners to an outpost app (outpost/app.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from outpost import metrics as om
from outpost.radius.handlers import LOGGER, RadiusHandler
from outpost.radius.metrics import RadiusMetrics

HANDLER_KEY = web.AppKey("radius_handler", RadiusHandler)


def setup(app: web.Application, link: Any, config: Any, *, reuse_port: bool = False) -> RadiusHandler:
    from outpost.radius.server import listen

    handler = RadiusHandler(link, metrics=RadiusMetrics(om.registry_of(app)))
    app[HANDLER_KEY] = handler

    async def refreshed(snapshot) -> None:
        handler.refresh(snapshot)

    link.on_refresh.append(refreshed)

    async def udp_ctx(app: web.Application) -> AsyncIterator[None]:
        auth = await listen(config.listen_radius, "AUTHENTIK_LISTEN__RADIUS", handler, reuse_port=reuse_port)
        try:
            acct = await listen(config.listen_radius_accounting, "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING", handler,
                                accounting=True, reuse_port=reuse_port)
        except OSError:
            await auth.close()
            raise
        LOGGER.info("radius listening", extra={"authentication": str(config.listen_radius),
                                               "accounting": str(config.listen_radius_accounting)})
        try:
            yield
        finally:
            await acct.close()
            await auth.close()

    app.cleanup_ctx.append(udp_ctx)
    return handler
