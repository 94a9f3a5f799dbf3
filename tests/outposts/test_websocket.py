"""The core's websocket endpoint /ws/outpost/<uuid>/ (reference §1.2, §1.3), served by a real aiohttp app."""

import asyncio
import uuid

import aiohttp
import pytest

from core.outposts.state import list_states
from protocols.outpost import Message, hello

from .conftest import messages_for, next_message, orm

pytestmark = pytest.mark.django_db(transaction=True)

ACK = '{"instruction":0,"args":{}}'
INSTANCE = "11111111-2222-4333-8444-555555555555"


async def refused(core, outpost, key, headers=None) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        if headers is not None:
            async with core.session.ws_connect(core.url(outpost), headers=headers):
                pass
        else:
            async with core.connect(outpost, key):
                pass
    return info.value.status


async def test_no_authorization_header_is_401(world, core_factory):
    core = await core_factory()
    assert await refused(core, world["outpost"], None) == 401


@pytest.mark.parametrize("header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer    ", "Token abc", ""])
async def test_unusable_authorization_header_is_401(world, core_factory, header):
    core = await core_factory()
    assert await refused(core, world["outpost"], None, headers={"Authorization": header}) == 401


async def test_unknown_token_is_403(world, core_factory):
    core = await core_factory()
    assert await refused(core, world["outpost"], "not-a-token") == 403


async def test_other_outposts_token_is_403(world, core_factory):
    core = await core_factory()
    assert await refused(core, world["outpost"], world["other_key"]) == 403


async def test_plain_users_api_token_is_403(world, core_factory):
    core = await core_factory()
    assert await refused(core, world["outpost"], world["alice_key"]) == 403


async def test_unknown_outpost_is_403_for_an_outpost_token(world, core_factory):
    core = await core_factory()
    assert await refused(core, uuid.uuid4(), world["key"]) == 403


async def test_superuser_may_connect_and_gets_404_for_unknown_outposts(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["admin_key"]) as ws:
        await ws.send_str(hello("1", INSTANCE, "h").encode())
        assert (await ws.receive()).data == ACK
    assert await refused(core, uuid.uuid4(), world["admin_key"]) == 404


async def test_not_a_uuid_is_404(world, core_factory):
    core = await core_factory()
    assert await refused(core, "not-a-uuid", world["key"]) == 404


async def test_inactive_service_account_is_refused(world, core_factory):
    def deactivate():
        from core.accounts.models import User

        User.objects.filter(username=world["outpost"].service_account_name).update(is_active=False)

    await orm(deactivate)
    core = await core_factory()
    assert await refused(core, world["outpost"], world["key"]) == 403


async def test_hello_gets_the_exact_ack_and_records_state(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as ws:
        await ws.send_str(hello("2025.10.1", INSTANCE, "outpost-host", golangVersion="go1.24").encode())
        frame = await ws.receive()
        assert frame.type == aiohttp.WSMsgType.TEXT and frame.data == ACK
        states = await orm(list_states, world["outpost"])
        assert [s["uid"] for s in states] == [INSTANCE]
        assert states[0]["hostname"] == "outpost-host" and states[0]["version"] == "2025.10.1"


async def test_state_is_forgotten_when_the_socket_closes(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as ws:
        await ws.send_str(hello("1", INSTANCE, "h").encode())
        assert (await ws.receive()).data == ACK
    for _ in range(100):  # the handler's clean-up runs after our close; bounded wait for it
        if not await orm(list_states, world["outpost"]):
            break
        await asyncio.sleep(0.02)
    assert await orm(list_states, world["outpost"]) == []


async def test_every_non_ack_message_is_acked_unknown_ones_too(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as ws:
        for message in (Message(2, {}), Message(3, {"x": 1}), Message(4, {"session_id": "s"}), Message(99, {})):
            await ws.send_str(message.encode())
            assert (await ws.receive()).data == ACK


async def test_acks_are_not_answered(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as ws:
        await ws.send_str(ACK)
        await ws.send_str(hello("1", INSTANCE, "h").encode())
        assert (await ws.receive()).data == ACK
        assert await messages_for(ws, 0.3) == []  # one ACK: for the hello, none for the ACK


async def test_malformed_frames_are_dropped_and_the_link_survives(world, core_factory, caplog):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as ws:
        for junk in ("not json", "[]", '{"instruction":"1"}', '{"instruction":1,"args":[1]}', "{" * 1000):
            await ws.send_str(junk)
        await ws.send_bytes(b"\xff\x00binary junk")
        await ws.send_str(hello("1", INSTANCE, "h").encode())
        assert (await ws.receive()).data == ACK
    assert sum("malformed frame" in r.getMessage() for r in caplog.records) == 1  # logged once


async def test_binary_json_frames_are_understood(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as ws:
        await ws.send_bytes(hello("1", INSTANCE, "h").encode().encode())
        assert (await ws.receive()).data == ACK


async def test_oversized_frame_closes_only_that_socket(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as big:
        await big.send_str('{"instruction":1,"args":{"x":"' + "a" * 70_000 + '"}}')
        frame = await big.receive()
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    async with core.connect(world["outpost"], world["key"]) as ws:
        await ws.send_str(hello("1", INSTANCE, "h").encode())
        assert (await ws.receive()).data == ACK


async def test_hub_counts_connections(world, core_factory):
    core = await core_factory()
    async with core.connect(world["outpost"], world["key"]) as ws:
        await ws.send_str(hello("1", INSTANCE, "h").encode())
        await next_message(ws, skip_ack=False)
        assert core.hub.connected(world["outpost"].pk) == 1 and core.hub.connected() == 1


async def test_a_socket_accepted_while_the_server_stops_is_closed_at_once(world, core_factory):
    """An outpost that connects between on_shutdown and the end of the stop (the embedded outpost's link does,
    right after start) must not hold the server up: before, `ak server` then waited for SIGKILL."""
    core = await core_factory()
    await core.hub.close_sockets()  # what on_shutdown does
    async with core.connect(world["outpost"], world["key"]) as ws:
        frame = await asyncio.wait_for(ws.receive(), 5)
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
    for _ in range(100):  # the handler detaches once its close completes (a bounded wait)
        if core.hub.connected() == 0:
            break
        await asyncio.sleep(0.05)
    assert core.hub.connected() == 0
