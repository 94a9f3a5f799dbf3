"""Fixtures for the outpost link tests: a real aiohttp app with core.outposts.websocket.setup(), real tokens,
a transactional database (the websocket authenticates in a pool thread, which must see committed rows)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.accounts.models import Application, Group, Token, TokenIntents, User
from core.outposts.hub import Hub, Publisher, publisher
from core.outposts.models import Outpost
from core.outposts.service import ensure_identity
from core.outposts.websocket import setup
from core.providers.proxy.models import ProxyProvider
from protocols.outpost import Message


def orm(fn: Callable, *args: Any):
    """Run ORM code from an async test: in a thread, closing that thread's connections afterwards."""
    from django.db import connections

    def call():
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return asyncio.to_thread(call)


def api_key(user: User, identifier: str) -> str:
    token = Token(identifier=identifier, intent=TokenIntents.INTENT_API, user=user, expiring=False)
    key = token.set_key()
    token.save()
    return key


@pytest.fixture
def world(transactional_db):
    provider = ProxyProvider.objects.create(name="whoami", external_host="https://whoami.example.com",
                                            internal_host="http://whoami:80", mode="forward_single")
    Application.objects.create(name="Who Am I", slug="whoami", provider=provider)
    other_provider = ProxyProvider.objects.create(name="other", external_host="https://other.example.com")
    outpost = Outpost.objects.create(name="proxy-outpost", type="proxy")
    outpost.providers.add(provider)
    other = Outpost.objects.create(name="other-outpost", type="proxy")
    other.providers.add(other_provider)
    admin = User.objects.create_user("akadmin", "admin@example.com", "pw")
    admins, _ = Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})
    admin.groups.add(admins)
    alice = User.objects.create_user("alice", "alice@example.com", "pw")
    staff = Group.objects.create(name="staff")
    return {
        "provider": provider, "other_provider": other_provider, "outpost": outpost, "other": other,
        "alice": alice, "staff": staff,
        "key": ensure_identity(outpost).readable_key, "other_key": ensure_identity(other).readable_key,
        "admin_key": api_key(admin, "admin-token"), "alice_key": api_key(alice, "alice-token"),
    }


class CoreUnderTest:
    """One aiohttp app with the websocket endpoint, served on 127.0.0.1."""

    def __init__(self, server: TestServer, hub: Hub, session: aiohttp.ClientSession):
        self.server, self.hub, self.session = server, hub, session

    def url(self, outpost, query: str = "?instance_uuid=11111111-2222-4333-8444-555555555555") -> str:
        return str(self.server.make_url(f"/ws/outpost/{getattr(outpost, 'pk', outpost)}/")) + query

    def connect(self, outpost, key: str | None, **kwargs):
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return self.session.ws_connect(self.url(outpost), headers=headers, **kwargs)


@pytest.fixture
async def core_factory():
    """``await core_factory(publisher=None)`` -> CoreUnderTest; all are stopped at teardown."""
    stack = contextlib.AsyncExitStack()

    async def make(pub: Publisher | None = None, poll_interval: float | None = None) -> CoreUnderTest:
        app = web.Application()
        hub = Hub(pub or publisher(), **({"poll_interval": poll_interval} if poll_interval else {}))
        setup(app, hub=hub)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        stack.push_async_callback(server.close)
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        return CoreUnderTest(server, hub, session)

    async with stack:
        yield make


async def next_message(ws, timeout: float = 2.0, skip_ack: bool = True) -> Message:
    while True:
        frame = await asyncio.wait_for(ws.receive(), timeout)
        assert frame.type == aiohttp.WSMsgType.TEXT, frame
        message = Message.decode(frame.data)
        if not (skip_ack and message.instruction == 0):
            return message


async def messages_for(ws, seconds: float) -> list[Message]:
    """Every frame received within ``seconds`` (a bounded wait, not a timing assertion)."""
    got = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            frame = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        if frame.type != aiohttp.WSMsgType.TEXT:
            break
        got.append(Message.decode(frame.data))
    return got
