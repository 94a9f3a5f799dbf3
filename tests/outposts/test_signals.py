"""Change propagation: model signals -> TRIGGER_UPDATE / SESSION_END on the websockets, after commit,
coalesced; across processes through the change table (no Redis) or Redis pub/sub (two hubs)."""

import asyncio
import threading
import uuid

import pytest
from django.db import transaction

from core.accounts.models import AuthenticatedSession, User
from core.outposts.hub import Hub, Publisher
from core.outposts.models import OutpostChange
from protocols.outpost import Instruction, Message, hash_session_key, hello, session_end, trigger_update

from .conftest import messages_for, next_message, orm

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE = 1.0  # the functional deadline: a refresh follows a change within a second
INSTANCE = "11111111-2222-4333-8444-555555555555"


async def connected(core, outpost, key):
    """An open socket whose HELLO was acknowledged (so the hub has registered it)."""
    ws = await core.connect(outpost, key).__aenter__()
    await ws.send_str(hello("1", INSTANCE, "h").encode())
    assert (await next_message(ws, skip_ack=False)).instruction == Instruction.ACK
    return ws


def triggers(messages):
    return [m for m in messages if m.instruction == Instruction.TRIGGER_UPDATE]


async def test_provider_save_triggers_its_outpost_within_a_second(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])
    other = await connected(core, world["other"], world["other_key"])

    def rename():
        world["provider"].name = "renamed"
        world["provider"].save()

    await orm(rename)
    assert await next_message(mine, timeout=DEADLINE) == trigger_update()
    assert triggers(await messages_for(other, 0.5)) == []  # it does not serve that provider


async def test_outpost_provider_list_change_triggers_that_outpost(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])
    await orm(lambda: world["outpost"].providers.add(world["other_provider"]))
    assert await next_message(mine, timeout=DEADLINE) == trigger_update()


async def test_group_membership_triggers_every_outpost(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])
    other = await connected(core, world["other"], world["other_key"])
    await orm(lambda: world["alice"].groups.add(world["staff"]))
    assert await next_message(mine, timeout=DEADLINE) == trigger_update()
    assert await next_message(other, timeout=DEADLINE) == trigger_update()


@pytest.mark.parametrize("change", ["binding", "user", "group", "application"])
async def test_users_groups_bindings_applications_trigger(world, core_factory, change):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])

    def act():
        from core.accounts.models import Application, Group
        from core.policies.models import PolicyBinding

        if change == "binding":
            PolicyBinding.objects.create(target=Application.objects.get(slug="whoami"), group=world["staff"], order=0)
        elif change == "user":
            User.objects.filter(pk=world["alice"].pk).first().save()
        elif change == "group":
            Group.objects.create(name="new-group")
        else:
            Application.objects.filter(slug="whoami").delete()

    await orm(act)
    assert await next_message(mine, timeout=DEADLINE) == trigger_update()


@pytest.mark.parametrize("change", ["property_mapping", "app_password_created", "app_password_deleted"])
async def test_what_a_cached_login_answer_rests_on_triggers(world, core_factory, change):
    """bind_mode=cached (outpost/bind_cache.py) empties on every refresh: a mapping's reply attributes and the
    app passwords a login accepts must announce their changes too."""
    from core.accounts.models import Token, TokenIntents
    from core.providers.radius.models import RadiusProviderPropertyMapping

    def app_password():
        token = Token(identifier="alice-app", intent=TokenIntents.INTENT_APP_PASSWORD, user=world["alice"])
        token.set_key()
        token.save()
        return token

    token = await orm(app_password) if change == "app_password_deleted" else None
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])

    def act():
        if change == "property_mapping":
            RadiusProviderPropertyMapping.objects.create(name="vlan", expression="return packet")
        elif change == "app_password_created":
            app_password()
        else:
            token.delete()

    await orm(act)
    assert await next_message(mine, timeout=DEADLINE) == trigger_update()


async def test_other_tokens_are_not_a_change(world, core_factory):
    from core.accounts.models import Token, TokenIntents

    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])

    def verification():
        token = Token(identifier="alice-verify", intent=TokenIntents.INTENT_VERIFICATION, user=world["alice"])
        token.set_key()
        token.save()

    await orm(verification)
    assert triggers(await messages_for(mine, 0.6)) == []


async def test_last_login_stamp_is_not_a_change(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])

    def login():
        from django.utils import timezone

        alice = User.objects.get(pk=world["alice"].pk)
        alice.last_login = timezone.now()
        alice.save(update_fields=["last_login"])

    await orm(login)
    assert triggers(await messages_for(mine, 0.6)) == []


async def test_a_burst_in_one_transaction_is_one_update(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])

    def burst():
        with transaction.atomic():
            for i in range(30):
                world["provider"].name = f"name-{i}"
                world["provider"].save()
                world["alice"].groups.add(world["staff"]) if i % 2 else world["alice"].groups.remove(world["staff"])

    await orm(burst)
    got = await messages_for(mine, 1.0)
    assert got == [trigger_update()]


async def test_the_hub_coalesces_separate_publishes(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])
    for _ in range(50):
        core.hub.publish(world["outpost"].pk, trigger_update())
        core.hub.publish(None, trigger_update())
    assert await messages_for(mine, 1.0) == [trigger_update()]


async def test_publish_from_other_threads_is_safe(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])
    sids = [f"{i:064x}" for i in range(40)]

    def send(part):
        for sid in part:
            core.hub.publish(None, session_end(sid))

    threads = [threading.Thread(target=send, args=(sids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = await messages_for(mine, 1.0)
    assert sorted(m.args["session_id"] for m in got) == sids


async def test_nothing_is_sent_before_commit_or_after_rollback(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])
    saved, go = threading.Event(), threading.Event()

    def slow_commit():
        with transaction.atomic():
            world["provider"].name = "in-transaction"
            world["provider"].save()
            saved.set()
            go.wait(10)

    def rolled_back():
        try:
            with transaction.atomic():
                world["provider"].name = "never"
                world["provider"].save()
                raise RuntimeError("roll back")
        except RuntimeError:
            pass

    await orm(rolled_back)
    assert triggers(await messages_for(mine, 0.5)) == []
    task = asyncio.ensure_future(orm(slow_commit))
    await asyncio.to_thread(saved.wait, 10)
    assert triggers(await messages_for(mine, 0.5)) == []  # not while the change is uncommitted
    go.set()
    await task
    assert await next_message(mine, timeout=DEADLINE) == trigger_update()


async def test_session_delete_sends_session_end_with_sid_to_every_outpost(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])
    other = await connected(core, world["other"], world["other_key"])
    key = "k" * 32

    def login_then_logout():
        session = AuthenticatedSession.objects.create(session_key=key, user=world["alice"])
        session.delete()

    await orm(login_then_logout)
    for ws in (mine, other):
        message = await next_message(ws, timeout=DEADLINE)
        assert message == Message(Instruction.SESSION_END, {"type": "event.session.end",
                                                             "session_id": hash_session_key(key)})


async def test_user_delete_ends_their_sessions_everywhere(world, core_factory):
    core = await core_factory()
    mine = await connected(core, world["outpost"], world["key"])

    def delete_user():
        AuthenticatedSession.objects.create(session_key="s" * 32, user=world["alice"])
        User.objects.filter(pk=world["alice"].pk).delete()

    await orm(delete_user)
    got = await messages_for(mine, 1.0)
    assert Message(Instruction.SESSION_END, {"type": "event.session.end",
                                             "session_id": hash_session_key("s" * 32)}) in got


# --- across processes ----------------------------------------------------------------------------


async def test_change_table_reaches_a_server_from_another_process(world, core_factory):
    """Without Redis: a process with no hub (ak apply_blueprint) writes rows; the server polls them."""
    server_side = Publisher(None)
    core = await core_factory(server_side)
    mine = await connected(core, world["outpost"], world["key"])
    cli_side = Publisher(None)  # another process: another origin, no hubs
    await orm(cli_side.emit, [(world["outpost"].pk, trigger_update()), (None, session_end("ab" * 32))])
    got = [await next_message(mine, timeout=DEADLINE) for _ in range(2)]
    assert sorted(m.instruction for m in got) == [Instruction.TRIGGER_UPDATE, Instruction.SESSION_END]
    assert triggers(await messages_for(mine, 0.8)) == []  # each row relayed once


async def test_change_table_rows_of_this_process_are_not_relayed_twice(world, core_factory):
    pub = Publisher(None)
    core = await core_factory(pub)
    mine = await connected(core, world["outpost"], world["key"])
    await orm(pub.emit, [(None, session_end("cd" * 32))])
    got = await messages_for(mine, 1.2)  # longer than two polls
    assert [m.args.get("session_id") for m in got] == ["cd" * 32]
    assert await orm(OutpostChange.objects.count) >= 1


def redis_url():
    from django.conf import settings

    from tests.conftest import need

    url = settings.CONFIG.redis.url if settings.CONFIG.redis else "redis://127.0.0.1:6379/0"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001
        need(False, f"Redis at {url}")
    return url


@pytest.mark.redis
async def test_redis_fans_out_between_two_servers(world, core_factory):
    url = redis_url()
    channel = f"gatehouse/outposts/test-{uuid.uuid4().hex}"
    core_a = await core_factory(Publisher(url, channel))
    core_b = await core_factory(Publisher(url, channel))
    ws_a = await connected(core_a, world["outpost"], world["key"])
    ws_b = await connected(core_b, world["outpost"], world["key"])
    other_b = await connected(core_b, world["other"], world["other_key"])
    cli = Publisher(url, channel)  # a process without a hub (the Django test client, ak apply_blueprint)
    await asyncio.to_thread(cli.emit, [(world["outpost"].pk, trigger_update())])
    assert await next_message(ws_a, timeout=DEADLINE) == trigger_update()
    assert await next_message(ws_b, timeout=DEADLINE) == trigger_update()
    assert triggers(await messages_for(other_b, 0.5)) == []  # targeted
    await asyncio.to_thread(cli.emit, [(None, session_end("ef" * 32))])
    for ws in (ws_a, ws_b, other_b):
        assert (await next_message(ws, timeout=DEADLINE)).args["session_id"] == "ef" * 32
    # a server's own publish also goes through Redis, so it reaches the other server too
    await asyncio.to_thread(core_a.hub.publisher.emit, [(world["other"].pk, trigger_update())])
    assert await next_message(other_b, timeout=DEADLINE) == trigger_update()
    cli.close()


@pytest.mark.redis
async def test_redis_malformed_envelopes_are_dropped(world, core_factory):
    import redis

    url = redis_url()
    channel = f"gatehouse/outposts/test-{uuid.uuid4().hex}"
    core = await core_factory(Publisher(url, channel))
    mine = await connected(core, world["outpost"], world["key"])
    client = redis.Redis.from_url(url)
    for junk in (b"junk", b"[]", b'{"outpost":"not-a-uuid","instruction":2,"args":{}}', b'{"instruction":"x"}'):
        client.publish(channel, junk)
    client.close()
    cli = Publisher(url, channel)
    await asyncio.to_thread(cli.emit, [(None, trigger_update())])
    assert await next_message(mine, timeout=DEADLINE) == trigger_update()
    cli.close()


async def test_hub_without_a_loop_ignores_publish():
    Hub(Publisher(None)).publish(None, trigger_update())  # not started: nothing to deliver to, no error
