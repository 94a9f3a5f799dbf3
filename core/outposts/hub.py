"""Getting messages for outposts from the code that changes things to the websockets that carry them.

Changes happen in synchronous Django code (request threads, management commands, other processes);
the websockets live on the aiohttp event loop of an ``ak server`` process. Two objects split the work:

``Publisher`` (one per process, on the ``authentik_outposts`` AppConfig, see ``publisher()``)
    The sending end, used by the signal handlers (core/outposts/signals.py). ``defer()`` collects the
    messages of the current transaction and sends them after it commits (an outpost that refetched
    before the commit would see the old state), deduplicated. ``emit()`` sends:

    * with Redis (``settings.CONFIG.redis``): one PUBLISH on a channel named after the database, with
      the synchronous client. Every server process (this one included) subscribes and relays, so
      replicas fan out and processes without a hub (``ak apply_blueprint``, the Django test client,
      the worker) reach every server;
    * without Redis: one ``OutpostChange`` row per message (the cross-process path), and straight to
      the hubs of this process (the fast path; their poller skips rows of their own origin). Every
      server polls the table every POLL_INTERVAL (0.5 s, so that a change from the CLI still reaches an
      outpost within about a second) and prunes rows older than PRUNE_AGE.

``Hub`` (one per aiohttp app, in its ``cleanup_ctx``)
    The connected websockets of this process, each with its own writer task and bounded queue
    (one writer per socket, so frames never interleave), plus the relay that feeds it: a Redis
    subscriber or the table poller. TRIGGER_UPDATE is coalesced per socket: the first one schedules a
    send UPDATE_DEBOUNCE later and further ones before that send are absorbed. The send happens after
    every absorbed change was committed, so the outpost's refetch sees all of them, and latency is bounded
    by the window (it is not a sliding debounce that a steady stream of changes could postpone forever).

Why the Publisher lives on the AppConfig and not in a module global: it is per-process state that
Django already gives a home with a lifecycle (``ready()``), reachable from any signal handler
without importing the aiohttp app; hubs register there while they run and leave on shutdown.

Why a table and not nothing without Redis: a single SQLite ``ak server`` next to ``ak apply_blueprint``
is the default deployment, and the outposts would otherwise learn about the blueprint only at their
periodic refresh (minutes). PostgreSQL LISTEN/NOTIFY would not serve SQLite; a polled table serves both.
Rows are read by id with a look-back window (ids can commit out of order on PostgreSQL) and a set of
the ids already relayed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import WSCloseCode, web

from protocols.outpost import UPDATE_DEBOUNCE, Instruction, Message, reconnect_delay, trigger_update

LOGGER = logging.getLogger("gatehouse.outposts.hub")

POLL_INTERVAL = 0.5  # seconds between reads of the change table (no Redis)
PRUNE_AGE = timedelta(minutes=5)  # change rows older than this are deleted
PRUNE_EVERY = 60.0  # seconds between prunes (by whichever servers are running)
LOOKBACK = 256  # ids below the highest seen that are read again (out-of-order commits)
QUEUE_LIMIT = 1000  # frames waiting for one socket; beyond this the socket is closed (it reconnects)
READY_TIMEOUT = 5.0  # how long start() waits for the relay's first subscription
CHANNEL_PREFIX = "gatehouse/outposts/"

T = TypeVar("T")
Target = str | None  # an outpost uuid (str), or None for every outpost


def default_channel() -> str:
    """The Redis channel for this database: messages concern the rows of one database only, and two
    deployments (or test runs) sharing one Redis must not wake each other's outposts."""
    from django.db import connections

    s = connections["default"].settings_dict
    ident = f"{s.get('ENGINE')}|{s.get('HOST')}|{s.get('PORT')}|{s.get('NAME')}"
    return CHANNEL_PREFIX + hashlib.sha256(ident.encode()).hexdigest()[:16]


def encode_envelope(target: Target, message: Message, origin: str) -> str:
    return json.dumps({"outpost": target, "instruction": int(message.instruction), "args": message.args,
                       "origin": origin}, separators=(",", ":"))


def decode_envelope(data: str | bytes) -> tuple[Target, Message]:
    """Raises ValueError on anything that is not an envelope we wrote."""
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("envelope is not an object")
    target = body.get("outpost")
    if target is not None:
        target = str(uuid.UUID(str(target)))
    message = Message.decode(json.dumps({"instruction": body.get("instruction"), "args": body.get("args")}))
    return target, message


def _normal_target(target: Any) -> Target:
    return None if target is None else str(uuid.UUID(str(target)))


# ---------------------------------------------------------------------------------------------------
# Sending end (sync)


class Publisher:
    """Sends outpost messages from synchronous code to every server process (see the module docstring)."""

    def __init__(self, redis_url: str | None, channel: str | None = None):
        self.redis_url = redis_url
        self._channel = channel
        self.origin = uuid.uuid4().hex
        self.hubs: set[Hub] = set()
        self._lock = threading.Lock()
        self._redis = None
        self._pending = threading.local()

    @property
    def channel(self) -> str:
        if self._channel is None:
            self._channel = default_channel()
        return self._channel

    # -- after commit -----------------------------------------------------------------------------
    def defer(self, target: Any, message: Message, using: str | None = None) -> None:
        """Send after the current transaction commits (now, outside one); duplicates within it merge.

        Every call registers the flush; the first flush drains the set, later ones find it empty. A
        rolled-back transaction leaves its messages pending until the next flush: one harmless extra
        refresh, never a missed one.
        """
        from django.db import transaction

        pending = getattr(self._pending, "items", None)
        if pending is None:
            pending = self._pending.items = {}
        target = _normal_target(target)
        pending[(target, message.encode())] = (target, message)
        transaction.on_commit(self.flush, using=using)

    def flush(self) -> None:
        pending = getattr(self._pending, "items", None)
        if not pending:
            return
        self._pending.items = {}
        self.emit(pending.values())

    # -- now ----------------------------------------------------------------------------------------
    def emit(self, items: Iterable[tuple[Target, Message]]) -> None:
        items = [(_normal_target(t), m) for t, m in items]
        if not items:
            return
        LOGGER.debug("outpost messages published", extra={
            "messages": [f"{instruction_name(m.instruction)} -> {t or 'every outpost'}" for t, m in items],
            "via": "redis" if self.redis_url else "database"})
        if self.redis_url:
            try:
                self._publish_redis(items)
                return
            except Exception as exc:  # noqa: BLE001 - redis raises several families; fall back below
                LOGGER.warning("cannot publish outpost messages to Redis; only this process's outposts hear "
                               "them (check AUTHENTIK_REDIS__HOST)", extra={"reason": str(exc)})
        else:
            self._write_rows(items)
        for hub in list(self.hubs):
            for target, message in items:
                hub.publish(target, message)

    def _publish_redis(self, items: list[tuple[Target, Message]]) -> None:
        with self._lock:
            if self._redis is None:
                from protocols.redis_url import client as redis_client

                self._redis = redis_client(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
            client = self._redis
        pipe = client.pipeline(transaction=False)
        for target, message in items:
            pipe.publish(self.channel, encode_envelope(target, message, self.origin))
        pipe.execute()

    def _write_rows(self, items: list[tuple[Target, Message]]) -> None:
        from django.db import DatabaseError

        from core.outposts.models import OutpostChange

        try:
            OutpostChange.objects.bulk_create([
                OutpostChange(outpost=t, instruction=int(m.instruction), args=m.args, origin=self.origin)
                for t, m in items])
        except DatabaseError as exc:  # the change itself is committed; outposts catch up at their refresh
            LOGGER.warning("cannot record an outpost change for other server processes",
                           extra={"reason": str(exc).strip().splitlines()[0] if str(exc).strip() else ""})

    def close(self) -> None:
        with self._lock:
            if self._redis is not None:
                self._redis.close()
                self._redis = None


def publisher() -> Publisher:
    """This process's Publisher (created by the app config's ready())."""
    from django.apps import apps

    return apps.get_app_config("authentik_outposts").publisher


# ---------------------------------------------------------------------------------------------------
# Receiving end (async)


@dataclass(eq=False)
class Connection:
    outpost: str
    instance: str
    ws: web.WebSocketResponse
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    update_pending: bool = False
    writer: asyncio.Task | None = None

    def send(self, message: Message) -> bool:
        """Queue a frame; False (and the socket is closed) when the peer does not keep up."""
        try:
            self.queue.put_nowait(message.encode())
            return True
        except asyncio.QueueFull:
            LOGGER.warning("outpost does not read its websocket; closing it",
                           extra={"outpost": self.outpost, "instance": self.instance})
            asyncio.ensure_future(self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER))
            return False

    async def write(self) -> None:
        while True:
            text = await self.queue.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return  # closing; the handler detaches us


def _call_closing(fn: Callable[..., T], *args: Any) -> T:
    """Run ORM code in a pool thread and close that thread's connections: the pool is shared by
    short calls (handshakes, hellos), and a kept connection would be idle until it timed out."""
    from django.db import connections

    try:
        return fn(*args)
    finally:
        connections.close_all()


class Hub:
    """The websockets of one aiohttp app and the relay that feeds them (see the module docstring)."""

    def __init__(self, publisher: Publisher, poll_interval: float = POLL_INTERVAL):
        self.publisher = publisher
        self.poll_interval = poll_interval
        self.connections: dict[str, set[Connection]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = asyncio.Event()
        self._relay: asyncio.Task | None = None
        self.closing = False  # set on_shutdown: a socket accepted after that is closed at once
        self._orm = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outposts-orm")
        self._poller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outposts-poll")

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.ready = asyncio.Event()
        self.publisher.hubs.add(self)
        relay = self._redis_relay() if self.publisher.redis_url else self._table_relay()
        self._relay = asyncio.create_task(relay, name="outposts-relay")
        try:  # changes made while the relay is not listening yet would be lost: wait a little for it
            await asyncio.wait_for(asyncio.shield(self.ready.wait()), READY_TIMEOUT)
        except TimeoutError:
            LOGGER.warning("outpost change relay not ready yet; it keeps trying")

    async def close_sockets(self) -> None:
        """on_shutdown: close every websocket (GOING_AWAY) so their handlers end and the server can stop."""
        self.closing = True
        conns = [c for group in self.connections.values() for c in group]
        await asyncio.gather(*(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                               for c in conns), return_exceptions=True)

    async def close(self) -> None:
        self.publisher.hubs.discard(self)
        if self._relay is not None:
            self._relay.cancel()
            await asyncio.gather(self._relay, return_exceptions=True)
        await self.close_sockets()
        loop = asyncio.get_running_loop()

        def _close_poll_connection():
            from django.db import connections

            connections.close_all()

        await loop.run_in_executor(self._poller, _close_poll_connection)
        self._poller.shutdown(wait=False)
        self._orm.shutdown(wait=False)

    async def run_orm(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._orm, _call_closing, fn, *args)

    # -- sockets ------------------------------------------------------------------------------------
    def attach(self, outpost: str, instance: str, ws: web.WebSocketResponse) -> Connection:
        conn = Connection(outpost=outpost, instance=instance, ws=ws)
        conn.writer = asyncio.create_task(conn.write(), name=f"outpost-ws-writer-{outpost}")
        self.connections.setdefault(outpost, set()).add(conn)
        return conn

    async def detach(self, conn: Connection) -> None:
        group = self.connections.get(conn.outpost)
        if group is not None:
            group.discard(conn)
            if not group:
                del self.connections[conn.outpost]
        if conn.writer is not None:
            conn.writer.cancel()
            await asyncio.gather(conn.writer, return_exceptions=True)

    def connected(self, outpost: Any = None) -> int:
        if outpost is None:
            return sum(len(g) for g in self.connections.values())
        return len(self.connections.get(str(outpost), ()))

    # -- delivery -----------------------------------------------------------------------------------
    def publish(self, target: Any, message: Message) -> None:
        """Thread-safe: deliver to this hub's sockets (``target`` None: every outpost)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        target = _normal_target(target)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.deliver(target, message)
        else:
            loop.call_soon_threadsafe(self.deliver, target, message)

    def deliver(self, target: Target, message: Message) -> None:
        """On the loop. TRIGGER_UPDATE is coalesced per socket (UPDATE_DEBOUNCE); the rest goes now."""
        if target is None:
            conns = [c for group in self.connections.values() for c in group]
        else:
            conns = list(self.connections.get(target, ()))
        for conn in conns:
            if message.instruction == Instruction.TRIGGER_UPDATE:
                if not conn.update_pending:
                    conn.update_pending = True
                    self.loop.call_later(UPDATE_DEBOUNCE, self._send_update, conn)
            else:
                _sent(conn, message)
                conn.send(message)

    @staticmethod
    def _send_update(conn: Connection) -> None:
        conn.update_pending = False
        if not conn.ws.closed:
            message = trigger_update()
            _sent(conn, message)
            conn.send(message)

    # -- relays -------------------------------------------------------------------------------------
    async def _redis_relay(self) -> None:
        """Subscribe to the channel; after a lost subscription, tell every outpost to refetch (a change may
        have been published while we were away)."""
        from redis.exceptions import RedisError

        from outpost.core_link import reraise_if_cancelled
        from protocols.redis_url import async_client

        client = async_client(self.publisher.redis_url, socket_connect_timeout=5)
        attempt = 0
        try:
            while True:
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(self.publisher.channel)
                        if attempt:
                            LOGGER.info("outpost change subscription restored")
                            self.deliver(None, trigger_update())
                        attempt = 0
                        self.ready.set()
                        async for item in pubsub.listen():
                            if item.get("type") == "message":
                                self._relay_envelope(item.get("data"))
                except (RedisError, OSError) as exc:
                    reraise_if_cancelled(exc)  # close() cancelled us as the subscription failed
                    attempt += 1
                    LOGGER.warning("outpost change subscription lost; retrying",
                                   extra={"reason": str(exc) or type(exc).__name__, "attempt": attempt})
                    await asyncio.sleep(reconnect_delay(attempt))
        finally:
            await client.aclose()

    def _relay_envelope(self, data: Any) -> None:
        try:
            target, message = decode_envelope(data)
        except (ValueError, TypeError):
            LOGGER.warning("dropped a malformed outpost change from Redis")
            return
        self.deliver(target, message)

    async def _table_relay(self) -> None:
        from django.db import DatabaseError

        loop = asyncio.get_running_loop()
        failing = False
        while True:
            try:
                cursor = await loop.run_in_executor(self._poller, _max_change_id)
                break
            except DatabaseError as exc:
                LOGGER.warning("cannot read outpost changes yet; retrying", extra={"reason": str(exc)})
                await asyncio.sleep(1.0)
        self.ready.set()
        floor = cursor  # rows from before this server started concern nobody connected now
        seen: set[int] = set()
        last_prune = 0.0
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                rows = await loop.run_in_executor(self._poller, _changes_after, cursor - LOOKBACK,
                                                  self.publisher.origin)
                if loop.time() - last_prune >= PRUNE_EVERY:
                    last_prune = loop.time()
                    await loop.run_in_executor(self._poller, _prune_changes)
            except DatabaseError as exc:
                if not failing:
                    LOGGER.warning("cannot read outpost changes; retrying", extra={"reason": str(exc)})
                failing = True
                await loop.run_in_executor(self._poller, _close_connection)
                continue
            failing = False
            for row_id, target, instruction, args in rows:
                cursor = max(cursor, row_id)
                if row_id <= floor or row_id in seen:
                    continue
                seen.add(row_id)
                if isinstance(args, dict):
                    self.deliver(None if target is None else str(target), Message(instruction, args))
            seen = {i for i in seen if i > cursor - LOOKBACK}


def instruction_name(value: int) -> str:
    """``trigger_update`` for 2, for log lines; an unknown number as itself."""
    try:
        return Instruction(value).name.lower()
    except ValueError:
        return str(value)


def _sent(conn: Connection, message: Message) -> None:
    """Debug line for a message to an outpost (SESSION_END's session id is left out: it identifies a session)."""
    LOGGER.debug("message to outpost", extra={"outpost": conn.outpost, "instance": conn.instance,
                                              "instruction": instruction_name(message.instruction)})


def _max_change_id() -> int:
    from django.db.models import Max

    from core.outposts.models import OutpostChange

    return OutpostChange.objects.aggregate(m=Max("id"))["m"] or 0


def _changes_after(after: int, origin: str) -> list[tuple]:
    from core.outposts.models import OutpostChange

    return list(OutpostChange.objects.filter(id__gt=after).exclude(origin=origin)
                .order_by("id").values_list("id", "outpost", "instruction", "args")[:1000])


def _prune_changes() -> int:
    from django.utils import timezone

    from core.outposts.models import OutpostChange

    return OutpostChange.objects.filter(created__lt=timezone.now() - PRUNE_AGE).delete()[0]


def _close_connection() -> None:
    from django.db import connections

    connections.close_all()
