"""The protected application in the e2e tests: an echo server.

``GET/POST/... <any path>`` answers JSON ``{"method", "path", "raw_path", "query", "headers"}`` describing
what it received (``headers`` is the list of ``[name, value]`` pairs as they came on the wire, so case and
duplicates are visible). ``/ws`` is a websocket: the first message is the same JSON for the upgrade
request, then every text message is echoed back.
"""

from __future__ import annotations

import json

from aiohttp import WSMsgType, web

from tests.e2e.support.threaded import ThreadedApp


def describe(request: web.Request) -> dict:
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": request.query_string,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
    }


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(json.dumps(describe(request)))
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


async def echo(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(describe(request), headers={"X-Upstream": "echo"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def start_upstream() -> ThreadedApp:
    """The echo upstream on a free 127.0.0.1 port; call ``stop()`` when done (or use ``with``)."""
    return ThreadedApp(create_app(), "e2e-upstream").start()


def header_values(described: dict, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive) in an echo answer."""
    return [v for k, v in described["headers"] if k.lower() == name.lower()]
