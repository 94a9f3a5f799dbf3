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


def test_a_password_set_in_the_second_of_the_bind_still_holds():
    """Compared to the microsecond: a password set just before the bind, in the same second, is not a change
    after it (the search was refused at whole seconds); one set after the bind is."""
    from datetime import UTC, datetime

    from outpost.ldap.handlers import still_valid

    bound_at = datetime(2026, 11, 29, 12, 0, 0, 600000, tzinfo=UTC).timestamp()
    session = Session(remote_ip="192.0.2.1", bound_at=bound_at)
    before = {"is_active": True, "password_change_date": "2026-11-29T12:00:00.200000Z"}
    after = {"is_active": True, "password_change_date": "2026-11-29T12:00:00.900000+00:00"}
    assert still_valid(session, before) and not still_valid(session, after)
    assert still_valid(session, {"is_active": True, "password_change_date": None})
    assert not still_valid(session, {"is_active": False}) and not still_valid(session, None)
