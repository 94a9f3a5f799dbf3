"""The core's end of the outpost link: ``GET /ws/outpost/<uuid>/`` (reference §1.2, §1.3; DESIGN §2).

Served by the aiohttp front of ``ak server`` (no Django Channels). The handshake needs
``Authorization: Bearer <token>`` with an ``api`` token of the outpost's own service account, or of a
superuser; it is refused before the upgrade: 401 without a usable header, 403 for any other token or
user (404 only for a superuser naming an outpost that does not exist).

Frames: every non-ACK message is answered with ``{"instruction":0,"args":{}}``; HELLO records the
instance's state for the health API (core/outposts/state.py, 15 s TTL); unknown instructions are
ignored; malformed frames are dropped (logged once per connection) and never end the link.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, WSMsgType, web

from core.metrics import OutpostLinkMetrics
from core.outposts.hub import Hub, instruction_name, publisher
from outpost.logs import TRACE
from outpost.metrics import registry_of
from protocols.outpost import MAX_FRAME_BYTES, Instruction, Message, ProtocolError, ack

LOGGER = logging.getLogger("gatehouse.outposts.websocket")
HUB_KEY = web.AppKey("outpost_hub", Hub)
LINK_METRICS_KEY = web.AppKey("outpost_link_metrics", OutpostLinkMetrics)
PATH = "/ws/outpost/{uuid}/"
HEARTBEAT = 30.0  # websocket pings; the outpost's HELLO every 10 s keeps proxies from idling it out


class Refused(Exception):
    def __init__(self, response: type[web.HTTPException], reason: str):
        super().__init__(reason)
        self.response = response
        self.reason = reason


def authorize(outpost_uuid: str, key: str):
    """The Outpost when ``key`` may connect as it; raises Refused otherwise. ORM: runs in a pool thread."""
    from core.accounts.models import Token
    from core.outposts.models import Outpost
    from core.outposts.service import outpost_for_user

    token = Token.authenticate(key, ("api",))
    if token is None:
        raise Refused(web.HTTPForbidden, "token unknown, expired, not an API token, or its user is inactive")
    outpost = Outpost.objects.filter(uuid=outpost_uuid).first()
    user = token.user
    if user.is_superuser:
        if outpost is None:
            raise Refused(web.HTTPNotFound, f"no outpost {outpost_uuid}")
        return outpost
    own = outpost_for_user(user)
    if outpost is None or own is None or own.pk != outpost.pk:
        raise Refused(web.HTTPForbidden, "this token belongs to another user or outpost; use this outpost's token")
    return outpost


def _record_hello(outpost, instance: str, args: dict) -> None:
    try:
        from core.outposts.state import record_state
    except ImportError:  # health bookkeeping is optional
        return
    record_state(outpost, instance, args)


def _forget(outpost, instance: str) -> None:
    try:
        from core.outposts.state import delete_state
    except ImportError:
        return
    delete_state(outpost, instance)


def _bearer(request: web.Request) -> str | None:
    scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


async def outpost_websocket(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["uuid"]
    try:
        outpost_uuid = str(uuidlib.UUID(raw))
    except ValueError:
        raise web.HTTPNotFound(text=f"{raw!r} is not an outpost uuid") from None
    key = _bearer(request)
    if key is None:
        raise web.HTTPUnauthorized(text="send Authorization: Bearer <the outpost's token>",
                                   headers={"WWW-Authenticate": 'Bearer realm="authentik"'})
    hub = request.app[HUB_KEY]
    try:
        outpost = await hub.run_orm(authorize, outpost_uuid, key)
    except Refused as exc:
        LOGGER.info("outpost websocket refused", extra={"outpost": outpost_uuid, "reason": exc.reason,
                                                        "client": request.remote})
        raise exc.response(text=exc.reason) from None
    instance = request.query.get("instance_uuid", "")[:64] or str(uuidlib.uuid4())
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    conn = hub.attach(outpost_uuid, instance, ws)
    if hub.closing:  # accepted while the server stops (on_shutdown already closed the others): it would hold it up
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
    metrics = request.app[LINK_METRICS_KEY]
    expected = str((outpost.config or {}).get("kubernetes_replicas", 1))  # authentik's label: the replicas wanted
    metrics.connected(outpost.name, instance, expected)
    LOGGER.info("outpost connected", extra={"outpost": outpost.name, "instance": instance, "client": request.remote})
    dropped = 0
    try:
        async for frame in ws:
            if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue  # ERROR/CLOSE end the iteration by themselves
            try:
                message = Message.decode(frame.data)
            except ProtocolError as exc:
                if not dropped:
                    LOGGER.warning("dropped a malformed frame from an outpost (further ones are counted)",
                                   extra={"outpost": outpost.name, "instance": instance, "reason": str(exc)})
                dropped += 1
                continue
            LOGGER.log(TRACE, "frame from outpost", extra={"outpost": outpost.name, "instance": instance,
                                                           "instruction": instruction_name(message.instruction)})
            if message.instruction == Instruction.ACK:
                continue
            if message.instruction == Instruction.HELLO:
                metrics.hello(outpost.name, instance, str(message.args.get("version", "")))
                LOGGER.debug("hello from outpost", extra={
                    "outpost": outpost.name, "instance": instance, "version": message.args.get("version", ""),
                    "hostname": message.args.get("hostname", "")})
                try:
                    await hub.run_orm(_record_hello, outpost, instance, dict(message.args))
                except Exception as exc:  # noqa: BLE001 - health bookkeeping (cache backend) must not end the link
                    LOGGER.warning("cannot record outpost state", extra={"outpost": outpost.name, "reason": str(exc)})
            conn.send(ack())
    finally:
        # aiohttp may cancel this handler when the peer goes away; the clean-up must finish regardless.
        metrics.disconnected(outpost.name, instance, expected)
        await asyncio.shield(_disconnected(hub, conn, outpost, dropped))
    return ws


async def _disconnected(hub: Hub, conn, outpost, dropped: int) -> None:
    await hub.detach(conn)
    try:
        await hub.run_orm(_forget, outpost, conn.instance)
    except Exception:  # noqa: BLE001, S110 - the state expires by itself (15 s TTL)
        pass
    LOGGER.info("outpost disconnected", extra={"outpost": outpost.name, "instance": conn.instance,
                                               "dropped_frames": dropped})


def setup(app: web.Application, hub: Hub | None = None) -> Hub:
    """Register the endpoint and put a Hub on ``app`` (started and stopped in cleanup_ctx; its sockets are
    closed on_shutdown so that a stopping server does not wait for them). ``hub`` is for tests."""
    hub = hub or Hub(publisher())
    app[HUB_KEY] = hub
    app[LINK_METRICS_KEY] = OutpostLinkMetrics(registry_of(app))

    async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.close()

    async def close_sockets(app: web.Application) -> None:
        await hub.close_sockets()

    app.cleanup_ctx.append(hub_ctx)
    app.on_shutdown.append(close_sockets)
    app.router.add_get(PATH, outpost_websocket)
    return hub
