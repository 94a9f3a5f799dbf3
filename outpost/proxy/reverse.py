"""Proxy mode (reference §2.4 "mode = proxy"): thin handlers over the pipeline (outpost/proxy/pipeline.py:
parse the request line, authenticate, decide, respond), whose ALLOW answer streams the request to
``internal_host`` (outpost/proxy/upstream.py: header hygiene, websockets). ``X-Forwarded-Host`` is used to
find the application only from a trusted proxy (THREATS 2).
"""

from __future__ import annotations

from aiohttp import web

from outpost.proxy import pipeline
from outpost.proxy.state import OUTPOST_KEY
from protocols import forward as fw

__all__ = ["add_catch_all", "proxy_handler", "proxy_mode_hosts"]


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Catch-all for proxy-mode applications (register it last)."""
    return await pipeline.proxy_mode(request.app[OUTPOST_KEY], request)


def add_catch_all(app: web.Application) -> None:
    """Route every other path to proxy mode (the standalone outpost calls this after setup())."""
    app.router.add_route("*", "/{tail:.*}", proxy_handler)


@web.middleware
async def proxy_mode_hosts(request: web.Request, handler) -> web.StreamResponse:
    """For an app that serves other paths itself (the embedded outpost inside ``ak server``): a request for
    the host of a proxy-mode application goes to proxy mode, everything else to ``handler`` (authentik's
    embedded outpost, reference §2.1: ``ProxyServer.HandleHost``). /outpost.goauthentik.io/* keeps its
    routes (start, callback, sign_out pick the application by host themselves)."""
    outpost = request.app.get(OUTPOST_KEY)
    path = request.path
    outpost_path = path == fw.OUTPOST_PREFIX or path.startswith(fw.OUTPOST_PREFIX + "/")
    if outpost is not None and outpost.apps.has_proxy_mode and not outpost_path:
        app, _, _ = pipeline.proxy_app(outpost.apps, host=request.host, secure=request.secure,
                                       headers=request.headers, peer_trusted=outpost.peer_trusted(request))
        if app is not None and app.mode == "proxy":
            return await proxy_handler(request)
    return await handler(request)
