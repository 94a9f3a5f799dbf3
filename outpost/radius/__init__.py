"""The RADIUS outpost (issue 10): PAP through the core, Status-Server, accounting recorded, BlastRADIUS-safe.
``setup(app, link, config)`` adds the UDP listeners to a standalone outpost app (outpost/app.py);
``setup_embedded(app, link, ...)`` to ``ak server``'s embedded outpost (core/outposts/embedded.py), which opens them
once a RADIUS provider is bound to it."""

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


def setup_embedded(app: web.Application, link: Any, listen_auth: Any, listen_accounting: Any) -> RadiusHandler:
    """RADIUS inside ``ak server``: nothing listens until a RADIUS provider is bound to the embedded outpost;
    then AUTHENTIK_LISTEN__RADIUS and __RADIUS_ACCOUNTING open (a port in use is logged once, the core
    serves on without RADIUS)."""
    from outpost.kind_view import KindView
    from outpost.radius.server import listen

    view = KindView(link, "radius")
    handler = RadiusHandler(view, metrics=RadiusMetrics(om.registry_of(app)))
    app[HANDLER_KEY] = handler
    state: dict[str, Any] = {"listeners": [], "failed": False}

    async def refreshed(snapshot) -> None:
        handler.refresh(snapshot)
        if not snapshot.providers or state["listeners"] or state["failed"]:
            return
        try:
            state["listeners"].append(await listen(listen_auth, "AUTHENTIK_LISTEN__RADIUS", handler))
            state["listeners"].append(await listen(listen_accounting, "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING",
                                                   handler, accounting=True))
        except OSError as exc:
            state["failed"] = True
            LOGGER.error("embedded outpost: a RADIUS listener did not open: %s", exc)
            return
        LOGGER.info("radius listening", extra={"authentication": str(listen_auth),
                                               "accounting": str(listen_accounting), "embedded": True})

    view.on_refresh.append(refreshed)

    async def udp_ctx(app: web.Application) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for protocol in state["listeners"]:
                await protocol.close()

    app.cleanup_ctx.append(udp_ctx)
    return handler
