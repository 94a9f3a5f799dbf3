"""LDAP unbind and the provider's unbind flow (reference §3.2): the outpost asks the core to run it on the bind's
session, unless no unbind flow is set, the connection never bound, or another connection shares that session."""

from __future__ import annotations

import asyncio

from outpost.ldap.handlers import Handlers, Session
from tests.outpost.ldap.conftest import FakeLink, directory_data, provider


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_unbind_asks_the_core_only_when_it_should():
    users, groups = directory_data(3)
    with_flow, without_flow = provider(unbind_flow_slug="default-invalidation-flow"), provider()
    link = FakeLink(users, groups, [with_flow])
    handlers = Handlers(link)
    first = Session(remote_ip="192.0.2.1", provider=with_flow, session_id="sid-1")
    second = Session(remote_ip="192.0.2.2", provider=with_flow, session_id="sid-1")
    handlers.sessions["sid-1"] = {first, second}
    handlers.unbind(first)  # a cached bind: the other connection still uses sid-1
    handlers.unbind(Session(remote_ip="192.0.2.3"))  # never bound
    handlers.unbind(Session(remote_ip="192.0.2.4", provider=without_flow, session_id="sid-2"))  # no unbind flow
    await settle()
    assert link.unbinds == []
    handlers.forget(second)
    handlers.sessions["sid-1"].discard(second)
    handlers.unbind(first)
    await settle()
    assert link.unbinds == [(with_flow["pk"], "sid-1", "192.0.2.1")]
