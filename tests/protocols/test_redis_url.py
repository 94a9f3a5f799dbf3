"""AUTHENTIK_REDIS__URL's Sentinel URLs (protocols/redis_url.py): parsed as go-redis / authentik PR #7118 write
them, refused with the variable's name, handed to redis-py's Sentinel (no server needed here: redis-py
connects lazily; tests/server/test_cluster_sentinel.py runs a real failover)."""

import pytest

from protocols import redis_url

URL = "redis+sentinel://default:s3cr%40t@s1:26380,s2,[::1]:26381/4?mastername=gh&sentinelpassword=sp"


def test_parse_every_part():
    parsed = redis_url.parse(URL)
    assert parsed.sentinels == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (parsed.master, parsed.db, parsed.username, parsed.password) == ("gh", 4, "default", "s3cr@t")
    assert (parsed.sentinel_username, parsed.sentinel_password) == ("", "sp")
    assert "s3cr" not in repr(parsed) and "sp'" not in repr(parsed)
    assert parsed.describe() == "Sentinel master 'gh' via s1:26380,s2:26379,::1:26381"
    assert redis_url.parse("redis+sentinel://s1?sentinelmasterid=m").master == "m"  # go-redis's other name
    assert redis_url.parse("redis+sentinel://s1/?mastername=m").db == 0


@pytest.mark.parametrize(("url", "says"), [
    ("redis://redis:6379/0", "AUTHENTIK_REDIS__HOST"),
    ("rediss+sentinel://s1?mastername=m", "TLS to Sentinel is not supported"),
    ("redis+sentinel://s1:26379", "no mastername"),
    ("redis+sentinel://s1:notaport?mastername=m", "'s1:notaport' is not a sentinel host[:port]"),
    ("redis+sentinel://s1,,s2?mastername=m", "'' is not a sentinel"),
    ("redis+sentinel://s1/16?mastername=m", "from 0 to 15"),
    ("redis+sentinel://s1?mastername=m&master=x", "unknown option 'master'"),
])
def test_bad_urls_name_the_variable_and_the_part(url, says):
    with pytest.raises(ValueError, match="^AUTHENTIK_REDIS__URL=") as err:
        redis_url.parse(url)
    assert says in str(err.value)


def test_messages_hide_both_passwords():
    with pytest.raises(ValueError) as err:
        redis_url.parse("redis+sentinel://u:topsecret@s1?sentinelpassword=alsosecret")
    assert "topsecret" not in str(err.value) and "alsosecret" not in str(err.value)
    assert "u:***@s1" in str(err.value)


def test_clients_are_redis_py_sentinel_clients():
    from redis.asyncio.sentinel import SentinelConnectionPool as AsyncPool
    from redis.sentinel import SentinelConnectionPool

    sync = redis_url.client(URL, socket_timeout=3)
    pool = sync.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "gh"
    assert pool.connection_kwargs["db"] == 4 and pool.connection_kwargs["password"] == "s3cr@t"
    assert pool.connection_kwargs["socket_timeout"] == 3
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert sentinel["password"] == "sp" and (sentinel["host"], sentinel["port"]) == ("s1", 26380)
    assert isinstance(redis_url.async_client(URL).connection_pool, AsyncPool)
    assert redis_url.client("redis://h:1/2").connection_pool.connection_kwargs["db"] == 2  # plain: redis-py's


def test_django_cache_pool():
    from redis.sentinel import SentinelConnectionPool

    pool = redis_url.SentinelPool.from_url(URL, parser_class=None)
    assert isinstance(pool, SentinelConnectionPool) and pool.connection_kwargs["db"] == 4

