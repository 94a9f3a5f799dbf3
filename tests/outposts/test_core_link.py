"""CoreLink against a scripted core (aiohttp): REST snapshot and paging, websocket HELLO, triggers,
session end, malformed frames, refresh coalescing, reconnect after the core goes away."""

import asyncio
import logging
import uuid

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from outpost.core_link import USER_AGENT, CoreLink, LinkError, Snapshot, describe_link_error
from protocols.outpost import Instruction, Message, session_end, trigger_update

OUTPOST = str(uuid.uuid4())
TOKEN = "outpost-token-123"  # noqa: S105 - test value


class FakeCore:
    """Serves /api/v3/outposts/instances/, /api/v3/outposts/proxy/ (paged) and the websocket."""

    def __init__(self, providers: int = 3, page_size: int = 2, kind: str = "proxy"):
        self.providers = [{"pk": i, "name": f"p{i}"} for i in range(providers)]
        self.page_size = page_size
        self.kind = kind
        self.requests: list[tuple[str, dict, dict]] = []
        self.sockets: list[web.WebSocketResponse] = []
        self.received: list[Message] = []
        self.connected = asyncio.Event()
        self.fetch_gate: asyncio.Event | None = None
        self.server: TestServer | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/outposts/instances/", self.instances)
        app.router.add_get("/api/v3/outposts/proxy/", self.configs)
        app.router.add_get(f"/ws/outpost/{OUTPOST}/", self.websocket)
        return app

    def auth(self, request):
        self.requests.append((request.path, dict(request.query), dict(request.headers)))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPForbidden()

    async def instances(self, request):
        self.auth(request)
        if self.fetch_gate is not None:
            await self.fetch_gate.wait()
        return web.json_response({"pagination": {"next": 0}, "results": [
            {"pk": OUTPOST, "name": "fake", "type": self.kind, "config": {}, "refresh_interval_s": 300}]})

    async def configs(self, request):
        self.auth(request)
        page, size = int(request.query["page"]), int(request.query["page_size"])
        chunk = self.providers[(page - 1) * self.page_size: page * self.page_size]
        more = page * self.page_size < len(self.providers)
        return web.json_response({"pagination": {"next": page + 1 if more else 0, "current": page},
                                  "results": chunk, "page_size_asked": size})

    async def websocket(self, request):
        self.auth(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connected.set()
        async for frame in ws:
            self.received.append(Message.decode(frame.data))
        return ws

    async def start(self, port: int | None = None):
        self.server = TestServer(self.app(), host="127.0.0.1", port=port)
        await self.server.start_server()
        return self

    async def stop(self):
        for ws in list(self.sockets):
            await ws.close()
        self.sockets.clear()
        self.connected.clear()
        await self.server.close()

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    async def send(self, message: Message | str):
        text = message if isinstance(message, str) else message.encode()
        for ws in self.sockets:
            await ws.send_str(text)

    def count(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)


@pytest.fixture
async def fake():
    core = await FakeCore().start()
    yield core
    await core.stop()


@pytest.fixture
async def link_factory():
    links = []

    async def make(url, token=TOKEN, **kwargs):
        link = CoreLink(url, token, kind=kwargs.pop("kind", "proxy"), **kwargs)
        await link.start()
        links.append(link)
        return link

    yield make
    for link in links:
        await link.close()


async def test_snapshot_has_the_outpost_and_every_page(fake, link_factory):
    link = await link_factory(fake.url)
    snapshot = await link.wait_ready(5)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.uuid == OUTPOST and snapshot.name == "fake" and snapshot.generation >= 1
    assert [p["name"] for p in snapshot.providers] == ["p0", "p1", "p2"]
    pages = [q for p, q, _ in fake.requests if p == "/api/v3/outposts/proxy/"]
    assert pages[:2] == [{"page": "1", "page_size": "100"}, {"page": "2", "page_size": "100"}]
    headers = fake.requests[0][2]
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("goauthentik.io/outpost/")


async def test_hello_at_connect_with_instance_uuid(fake, link_factory):
    link = await link_factory(fake.url)
    await link.wait_connected(5)
    await asyncio.wait_for(fake.connected.wait(), 5)
    for _ in range(100):
        if fake.received:
            break
        await asyncio.sleep(0.02)
    first = fake.received[0]
    assert first.instruction == Instruction.HELLO and first.args["uuid"] == link.instance_uuid
    assert {"version", "buildHash", "hostname"} <= set(first.args)
    ws_query = [q for p, q, _ in fake.requests if p.startswith("/ws/outpost/")][0]
    assert ws_query["instance_uuid"] == link.instance_uuid and ws_query["attempt"] == "0"


async def test_trigger_update_swaps_the_snapshot_and_notifies(fake, link_factory):
    link = await link_factory(fake.url)
    refreshed = asyncio.Queue()
    link.on_refresh.append(refreshed.put_nowait)
    await link.wait_connected(5)
    while not refreshed.empty() or link.snapshot is None:
        await asyncio.wait_for(refreshed.get(), 5)
    old = link.snapshot
    fake.providers.append({"pk": 9, "name": "new"})
    await fake.send(trigger_update())
    new = await asyncio.wait_for(refreshed.get(), 1.0)
    assert new is link.snapshot and new is not old
    assert [p["name"] for p in new.providers][-1] == "new" and new.generation > old.generation
    assert [p["name"] for p in old.providers] == ["p0", "p1", "p2"]  # the old one is untouched


async def test_session_end_calls_back_with_the_session_id(fake, link_factory):
    link = await link_factory(fake.url)
    ended = asyncio.Queue()

    async def on_end(session_id):
        await ended.put(session_id)

    link.on_session_end.append(on_end)
    await link.wait_connected(5)
    await fake.send(session_end("ab" * 32))
    assert await asyncio.wait_for(ended.get(), 1.0) == "ab" * 32


async def test_malformed_and_unknown_frames_are_ignored(fake, link_factory):
    link = await link_factory(fake.url)
    ended = asyncio.Queue()
    link.on_session_end.append(ended.put_nowait)
    await link.wait_connected(5)
    for junk in ("junk", "[]", '{"instruction":"x"}', Message(99, {"x": 1}), Message(3, {"sub_type": "x"}),
                 Message(4, {"session_id": 5}), Message(0, {})):
        await fake.send(junk)
    await fake.send(session_end("cd" * 32))
    assert await asyncio.wait_for(ended.get(), 2.0) == "cd" * 32
    assert link.connected


async def test_a_callback_that_raises_does_not_stop_the_others(fake, link_factory):
    link = await link_factory(fake.url)
    seen = asyncio.Queue()

    def broken(_snapshot):
        raise RuntimeError("consumer bug")

    link.on_refresh += [broken, seen.put_nowait]
    await link.wait_connected(5)
    await fake.send(trigger_update())
    assert isinstance(await asyncio.wait_for(seen.get(), 2.0), Snapshot)


async def test_refreshes_are_coalesced(fake, link_factory):
    link = await link_factory(fake.url)
    await link.wait_connected(5)
    await asyncio.sleep(0.3)  # let the connect-time refresh finish
    before = fake.count("/api/v3/outposts/instances/")
    fake.fetch_gate = asyncio.Event()
    calls = [asyncio.ensure_future(link.refresh())]
    for _ in range(200):  # until that fetch waits at the gate
        if fake.count("/api/v3/outposts/instances/") > before:
            break
        await asyncio.sleep(0.01)
    calls += [asyncio.ensure_future(link.refresh()) for _ in range(19)]
    await asyncio.sleep(0.05)
    fake.fetch_gate.set()
    results = await asyncio.gather(*calls)
    fetches = fake.count("/api/v3/outposts/instances/") - before
    assert fetches == 2  # the running one, and one more for everything asked during it
    assert results[0].generation < results[1].generation  # the later calls got the later fetch
    assert all(r is results[-1] for r in results[1:])


async def test_wrong_token_never_becomes_ready(fake, link_factory):
    link = await link_factory(fake.url, token="wrong")  # noqa: S106
    with pytest.raises(TimeoutError):
        await link.wait_ready(0.8)
    assert link.snapshot is None and not link.connected
    with pytest.raises(LinkError, match="AUTHENTIK_TOKEN"):
        await link.fetch()


async def test_kind_mismatch_is_named(fake, link_factory):
    fake.kind = "ldap"
    link = await link_factory(fake.url, kind="proxy")
    with pytest.raises(LinkError, match="ldap outpost"):
        await link.fetch()


async def test_core_loss_keeps_the_snapshot_and_reconnects_with_a_refetch(link_factory):
    fake = await FakeCore().start()
    port = fake.server.port
    link = await link_factory(fake.url)
    await link.wait_connected(5)
    snapshot = await link.wait_ready(5)
    await fake.stop()
    for _ in range(200):
        if not link.connected:
            break
        await asyncio.sleep(0.02)
    assert not link.connected
    assert link.snapshot.generation >= snapshot.generation
    kept = link.snapshot
    await asyncio.sleep(1.0)  # some failed reconnects meanwhile
    assert link.snapshot is kept  # still serving the last one
    back = FakeCore()
    back.providers.append({"pk": 7, "name": "added-while-away"})
    await back.start(port=port)
    try:
        await asyncio.wait_for(back.connected.wait(), 8)  # backoff is capped at 5 s
        for _ in range(200):
            if link.snapshot.generation > kept.generation:
                break
            await asyncio.sleep(0.02)
        assert link.snapshot.generation > kept.generation
        assert link.snapshot.providers[-1]["name"] == "added-while-away"
        attempts = [int(q["attempt"]) for p, q, _ in back.requests if p.startswith("/ws/outpost/")]
        assert attempts and attempts[0] >= 1
    finally:
        await back.stop()


async def test_periodic_refresh(fake, link_factory):
    link = await link_factory(fake.url, refresh_interval=0.2)
    await link.wait_ready(5)
    first = link.snapshot.generation
    for _ in range(100):
        if link.snapshot.generation >= first + 2:
            break
        await asyncio.sleep(0.05)
    assert link.snapshot.generation >= first + 2


def test_snapshot_refresh_interval_bounds():
    def snap(value):
        return Snapshot(outpost={"refresh_interval_s": value}, providers=())

    assert snap(300).refresh_interval == 300 and snap(5).refresh_interval == 30
    assert snap(0).refresh_interval == 300 and snap(-1).refresh_interval == 300 and snap("x").refresh_interval == 300


async def test_bad_json_from_the_core_is_a_link_error(link_factory):
    async def not_json(request):
        return web.Response(text="<html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/api/v3/outposts/instances/", not_json)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        link = await link_factory(str(server.make_url("/")))
        with pytest.raises(LinkError, match="JSON"):
            await link.fetch()
    finally:
        await server.close()


async def test_subpath_host_is_honoured(link_factory):
    fake = FakeCore()
    outer = web.Application()
    outer.add_subapp("/auth/", fake.app())
    server = TestServer(outer, host="127.0.0.1")
    await server.start_server()
    try:
        link = await link_factory(str(server.make_url("/auth/")))
        await link.wait_connected(5)
        assert link.snapshot.uuid == OUTPOST
        await link.close()
    finally:
        for ws in fake.sockets:
            await ws.close()
        await server.close()


def test_close_without_start_is_fine():
    asyncio.run(CoreLink("http://127.0.0.1:9", "t").close())



class NoUpgradeCore(FakeCore):
    """A reverse proxy in front of the core that drops Upgrade/Connection: the websocket path answers 200."""

    async def websocket(self, request):
        self.auth(request)
        return web.Response(text="<html>the app behind a proxy</html>", content_type="text/html")


async def test_a_proxy_without_upgrade_is_named_once_and_rest_still_serves(link_factory, caplog):
    core = await NoUpgradeCore().start()
    try:
        with caplog.at_level(logging.DEBUG, logger="gatehouse.outpost.link"):
            link = await link_factory(core.url)
            await link.wait_ready(5)  # the configuration arrives over REST all the same
            for _ in range(1000):  # 4 attempts take ~2-4 s of backoff; bounded at 20 s on a loaded machine
                # wait for the link to have handled the 4th failure, not just for the core to have seen it
                if sum(r.getMessage() == "core still unreachable" for r in caplog.records) >= 3:
                    break
                await asyncio.sleep(0.02)
            await link.close()
        assert core.count(f"/ws/outpost/{OUTPOST}/") >= 4 and not link.connected
        ours = [r for r in caplog.records if "instead of 101" in getattr(r, "reason", "")]
        warnings = [r for r in ours if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "Upgrade" in warnings[0].reason, [r.getMessage() for r in ours]
        assert sum(r.getMessage() == "core still unreachable" for r in ours) >= 3
    finally:
        await core.stop()


async def test_an_outage_is_summarised_when_the_link_comes_back(link_factory, caplog):
    core = await NoUpgradeCore().start()
    port = core.server.port
    link = await link_factory(core.url)
    await link.wait_ready(5)
    for _ in range(1000):
        if core.count(f"/ws/outpost/{OUTPOST}/") >= 2:
            break
        await asyncio.sleep(0.02)
    await core.stop()
    with caplog.at_level(logging.INFO, logger="gatehouse.outpost.link"):
        fixed = await FakeCore().start(port=port)
        try:
            await link.wait_connected(10)
            await link.close()
        finally:
            await fixed.stop()
    (connected,) = [r for r in caplog.records if r.getMessage() == "connected to the core"]
    assert connected.after_attempts >= 2 and connected.down_s > 0


@pytest.mark.parametrize("status, words", [
    (403, "refused this outpost's token (HTTP 403); check AUTHENTIK_TOKEN"),
    (404, "does not know this outpost (HTTP 404)"),
    (502, "HTTP 502 instead of 101"),
])
def test_handshake_failures_are_described_for_people(status, words):
    error = aiohttp.WSServerHandshakeError(None, (), status=status, message="Invalid response status")
    assert words in describe_link_error(error)
    assert describe_link_error(ConnectionRefusedError(111, "Connect call failed")) == "[Errno 111] Connect call failed"
    assert describe_link_error(TimeoutError()) == "TimeoutError"



class _PendingConnect:
    """A websocket connect the test fails by hand, so that it can fail it and cancel the link in one step of
    the loop: the moment ``ak server`` hit on SIGINT (the connect to its own closed listener failed as
    close() cancelled the embedded outpost's link) and then hung for ever."""

    def __init__(self):
        self.pending: list[asyncio.Future] = []

    def ws_connect(self, *args, **kwargs):
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    async def close(self):
        pass


async def test_close_ends_the_link_when_a_connect_error_races_the_cancel():
    link = CoreLink("http://127.0.0.1:9/", TOKEN)
    link._events()
    link.snapshot = Snapshot(outpost={"pk": OUTPOST, "name": "fake"}, providers=(), generation=1)
    link._session = session = _PendingConnect()
    run = asyncio.create_task(link._run(), name="core-link")
    link._tasks = [run]
    while not session.pending:
        await asyncio.sleep(0)
    session.pending[0].set_exception(OSError("Connect call failed"))
    async with asyncio.timeout(10):  # bounded: before the fix close() never returned
        await link.close()  # cancels the link in this same step of the loop: the failure and the cancel race
    assert run.cancelled() and len(session.pending) == 1
