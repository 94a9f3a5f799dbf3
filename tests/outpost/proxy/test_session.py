"""outpost/proxy/session.py: cookie codec (tampering, THREATS 1/7/8), MemoryStore with snapshot, RedisStore
against the real Redis (shared by replicas, invalidation by pub/sub)."""

import asyncio
import json
import os
import stat
import uuid

import pytest

from outpost.proxy import session as ss
from outpost.proxy.session import MemoryStore, RedisStore, Session
from tests.conftest import need

SECRET, CLIENT = "C" * 32, "client-a"


# --- cookie codec --------------------------------------------------------------------------------------

def test_session_id_shape():
    ids = {ss.new_session_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 43 for i in ids)


def test_cookie_round_trip():
    sid = ss.new_session_id()
    value = ss.sign_cookie(sid, cookie_secret=SECRET, client_id=CLIENT)
    assert ss.unsign_cookie(value, cookie_secret=SECRET, client_id=CLIENT) == sid


def _tampered():
    sid = ss.new_session_id()
    good = ss.sign_cookie(sid, cookie_secret=SECRET, client_id=CLIENT)
    other = ss.new_session_id()
    mac = good.split(".")[1]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    return [
        None, "", ".", "abc", sid, f"{sid}.", f".{mac}", f"{other}.{mac}", f"{sid}.{flipped}", good + "x",
        good + "." + mac, good.upper(), "x" * 10_000, good + "\x00", f"{sid}.{mac}=", " " + good,
        "../../etc/passwd." + mac, "\u00e9" * 43 + "." + mac, 12345, b"bytes",
        ss.sign_cookie(sid, cookie_secret="other-secret", client_id=CLIENT),
        ss.sign_cookie(sid, cookie_secret=SECRET, client_id="client-b"),  # another application's cookie
    ]


@pytest.mark.parametrize("value", _tampered())
def test_tampered_cookies_rejected_without_exception(value):
    assert ss.unsign_cookie(value, cookie_secret=SECRET, client_id=CLIENT) is None


def test_cookie_attributes():
    assert ss.cookie_attributes(secure=True) == {"path": "/", "httponly": True, "samesite": "Lax", "secure": True}
    a = ss.cookie_attributes(secure=False, cookie_domain="example.com", max_age=-5)
    assert a["domain"] == "example.com" and a["max_age"] == 0 and a["secure"] is False


def test_session_from_dict_garbage():
    for bad in (None, [], {"id": "x"}, {"id": "x", "client_id": "c", "claims": {}, "expires_at": 1},
                {"id": ss.new_session_id(), "client_id": "c", "claims": [], "expires_at": 1},
                {"id": ss.new_session_id(), "client_id": "c", "claims": {}, "expires_at": "soon"}):
        assert Session.from_dict(bad) is None


# --- stores (shared behaviour) -------------------------------------------------------------------------

def make(sub="alice", sid="core-sid-1", client=CLIENT, ttl=300.0, now=None):
    import time
    now = time.time() if now is None else now
    return Session(ss.new_session_id(), client, {"sub": sub, "sid": sid, "preferred_username": sub}, "tok",
                   expires_at=now + ttl)


async def exercise_store(store):
    a1, a2, b = make("alice", "sid-1"), make("alice", "sid-2"), make("bob", "sid-3")
    for s in (a1, a2, b):
        await store.put(s)
    assert (await store.get(a1.id)).claims["sub"] == "alice"
    assert await store.get(ss.new_session_id()) is None
    assert await store.delete_by_sid("sid-1") == 1
    assert await store.get(a1.id) is None and await store.get(a2.id) is not None
    assert await store.delete_by_sub("alice") == 1
    assert await store.get(a2.id) is None and await store.get(b.id) is not None
    await store.delete(b.id)
    assert await store.get(b.id) is None
    assert await store.delete_by_sid("") == 0 and await store.delete_by_sub("nobody") == 0
    expired = make(ttl=-1)
    await store.put(expired)
    assert await store.get(expired.id) is None


async def test_memory_store_basics():
    await exercise_store(MemoryStore())


async def test_memory_expiry_with_clock():
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    s = make(ttl=10, now=1000.0)
    await store.put(s)
    assert await store.get(s.id) is not None
    now[0] = 1011.0
    assert await store.get(s.id) is None and len(store) == 0
    await store.put(make(ttl=10, now=1000.0))
    assert store.purge() == 1


async def test_memory_snapshot_survives_restart(tmp_path):
    path = tmp_path / "state" / "sessions.json"
    store = MemoryStore(path, snapshot_interval=3600)
    await store.start()
    kept, gone = make("alice", "sid-1"), make("bob", "sid-2", ttl=0.0)
    await store.put(kept)
    await store.put(gone)
    await store.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".sessions-")]  # no temp left over
    restarted = MemoryStore(path, snapshot_interval=3600)
    await restarted.start()
    got = await restarted.get(kept.id)
    assert got is not None and got.claims == kept.claims and got.raw_token == "tok"
    assert await restarted.get(gone.id) is None
    assert await restarted.delete_by_sid("sid-1") == 1  # indexes rebuilt from the snapshot
    await restarted.close()


async def test_memory_snapshot_periodic(tmp_path):
    path = tmp_path / "sessions.json"
    store = MemoryStore(path, snapshot_interval=0.01)
    await store.start()
    s = make()
    await store.put(s)
    for _ in range(500):  # functional wait, bounded: the loop writes within a few intervals
        await asyncio.sleep(0.01)
        if path.exists() and s.id in path.read_text():
            break
    assert s.id in path.read_text()
    await store.close()


async def test_memory_snapshot_corrupt_file(tmp_path):
    path = tmp_path / "sessions.json"
    path.write_text("{not json")
    store = MemoryStore(path)
    await store.start()
    assert len(store) == 0 and (tmp_path / "sessions.corrupt").exists()
    await store.close()
    path.write_text(json.dumps({"version": 1, "sessions": [{"id": "bad"}, 5, None]}))
    store = MemoryStore(path)
    assert store.load() == 0


# --- Redis ---------------------------------------------------------------------------------------------

@pytest.fixture
async def redis_client():
    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis(host="127.0.0.1", port=6379)
    try:
        await client.ping()
    except (RedisConnectionError, OSError):
        await client.aclose()
        need(False, "Redis at 127.0.0.1:6379")
    prefix = f"test:proxy:{uuid.uuid4().hex}:"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.mark.redis
async def test_redis_store_basics(redis_client):
    client, prefix = redis_client
    store = RedisStore(client, prefix=prefix)
    await store.start()
    try:
        await exercise_store(store)
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_ttl_is_session_expiry(redis_client):
    client, prefix = redis_client
    store = RedisStore(client, prefix=prefix)
    s = make(ttl=120)
    await store.put(s)
    ttl = await client.ttl(f"{prefix}s:{s.id}")
    assert 100 < ttl <= 121
    assert 100 < await client.ttl(f"{prefix}sid:core-sid-1") <= 121


@pytest.mark.redis
async def test_redis_shared_between_replicas_and_invalidated(redis_client):
    """Two replicas on one Redis: a session made on A is read by B; SESSION_END handled by A evicts it from
    B's in-process cache at once (pub/sub), not after the cache entry ages out."""
    client, prefix = redis_client
    from redis.asyncio import Redis
    client_b = Redis(host="127.0.0.1", port=6379)
    a = RedisStore(client, prefix=prefix, cache_ttl=3600)
    b = RedisStore(client_b, prefix=prefix, cache_ttl=3600)
    await a.start()
    await b.start()
    try:
        s = make("alice", "sid-9")
        await a.put(s)
        assert (await b.get(s.id)).sub == "alice"  # now cached in B
        assert s.id in b._cache
        assert await a.delete_by_sid("sid-9") == 1
        for _ in range(500):  # bounded functional wait for the pub/sub message
            if s.id not in b._cache:
                break
            await asyncio.sleep(0.01)
        assert await b.get(s.id) is None
        s2 = make("bob", "sid-10")
        await b.put(s2)
        await a.get(s2.id)
        assert await b.delete_by_sub("bob") == 1
        for _ in range(500):
            if s2.id not in a._cache:
                break
            await asyncio.sleep(0.01)
        assert await a.get(s2.id) is None
    finally:
        await a.close()
        await b.close()
        await client_b.aclose()


@pytest.mark.redis
async def test_redis_garbage_value_is_no_session(redis_client):
    client, prefix = redis_client
    store = RedisStore(client, prefix=prefix)
    sid = ss.new_session_id()
    for raw in (b"not json", b"[]", json.dumps({"id": ss.new_session_id(), "client_id": "c", "claims": {},
                                                 "expires_at": 9e12}).encode()):
        await client.set(f"{prefix}s:{sid}", raw)
        assert await store.get(sid) is None


@pytest.mark.redis
async def test_redis_lru_bounded(redis_client):
    client, prefix = redis_client
    store = RedisStore(client, prefix=prefix, cache_size=3)
    for _ in range(10):
        await store.put(make())
    assert len(store._cache) == 3
