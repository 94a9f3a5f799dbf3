"""Redis connection URLs, shared by the core and the outposts: one place that turns a URL into a redis-py client,
Redis Sentinel included.

``redis://`` and ``rediss://`` are redis-py's own (``redis.Redis.from_url``). Released authentik versions only
know AUTHENTIK_REDIS__HOST/PORT/DB/USERNAME/PASSWORD/TLS; Sentinel was proposed in authentik's Redis-URL work
(goauthentik/authentik PR #7118, closed unmerged, ``authentik/lib/utils/parser.py``) as one variable,
AUTHENTIK_REDIS__URL, in go-redis's URL form (the outposts' client), which is what is read here::

    redis+sentinel://[[username]:password@]host1[:26379][,host2[:26379]...][/db]?mastername=NAME
        [&sentinelusername=USER][&sentinelpassword=PASSWORD]

``username``/``password`` are the Redis master's (as AUTHENTIK_REDIS__USERNAME/PASSWORD), ``sentinel*`` the
sentinels' own (none by default); ``sentinelmasterid`` is accepted for ``mastername`` as go-redis does.
redis-py has no Sentinel URL, so the parsing is here; the connecting is redis-py's Sentinel
(``redis.sentinel`` / ``redis.asyncio.sentinel``): it asks the sentinels for the current master on every new
connection, and a connection error drops the pool's connections, so after a failover the next command goes to
the promoted replica without a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
EXAMPLE = "redis+sentinel://:password@sentinel-1:26379,sentinel-2:26379/0?mastername=mymaster"
QUERY_NAMES = ("mastername", "sentinelmasterid", "sentinelusername", "sentinelpassword")
SENTINEL_TIMEOUT = 2.0  # seconds for one sentinel to answer "which is the master?"


@dataclass(frozen=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    sentinel_username: str = ""
    sentinel_password: str = field(default="", repr=False)

    def describe(self) -> str:
        """For people (no passwords): the master's name and the sentinels."""
        return f"Sentinel master {self.master!r} via " + ",".join(f"{h}:{p}" for h, p in self.sentinels)


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def parse(url: str, name: str = "AUTHENTIK_REDIS__URL") -> SentinelURL:
    """The Sentinel URL's parts; ValueError naming ``name``, the bad part and an example otherwise."""
    shown = _without_password(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != SENTINEL_SCHEME:
        hint = (" (TLS to Sentinel is not supported yet: use redis+sentinel://)" if scheme.lower() == "rediss+sentinel"
                else "; for one Redis server set AUTHENTIK_REDIS__HOST/PORT/DB instead")
        raise ValueError(f"{name}={shown!r}: expected a redis+sentinel:// URL, e.g. {EXAMPLE}{hint}")
    parts = urlsplit("redis://" + rest)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for item in hosts.split(","):
        host, port = _host_port(item.strip())
        if not host or port is None:
            raise ValueError(f"{name}={shown!r}: {item.strip()!r} is not a sentinel host[:port], e.g. {EXAMPLE}")
        sentinels.append((host, port))
    path = parts.path.strip("/")
    if path and not (path.isdigit() and 0 <= int(path) <= 15):
        raise ValueError(f"{name}={shown!r}: the database after the sentinels must be a number from 0 to 15, "
                         f"not {path!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(QUERY_NAMES))
    if unknown:
        raise ValueError(f"{name}={shown!r}: unknown option {unknown[0]!r}; the options are {', '.join(QUERY_NAMES)}")
    master = (query.get("mastername") or query.get("sentinelmasterid") or [""])[0].strip()
    if not master:
        raise ValueError(f"{name}={shown!r}: no mastername: add ?mastername=<the name in the sentinels' "
                         f"`sentinel monitor` line>, e.g. {EXAMPLE}")
    return SentinelURL(tuple(sentinels), master, int(path or 0), unquote(username), unquote(password),
                       query.get("sentinelusername", [""])[0], query.get("sentinelpassword", [""])[0])


def _host_port(item: str) -> tuple[str, int | None]:
    if item.startswith("["):  # [IPv6]:port
        host, _, port = item[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not port:
        return host, SENTINEL_PORT
    return host, int(port) if port.isdigit() and 1 <= int(port) <= 65535 else None


def _without_password(url: str) -> str:
    """The URL for messages: both passwords as ***."""
    url = re.sub(r"(://[^:@/]*:)[^@]*@", r"\1***@", url)
    return re.sub(r"(sentinelpassword=)[^&]*", r"\1***", url)


def reason(exc: Exception, url: str) -> str:
    """A Redis error for people: redis-py's MasterNotFoundError names the whole client, with its settings."""
    from redis.sentinel import MasterNotFoundError

    if isinstance(exc, MasterNotFoundError) and is_sentinel(url):
        return f"no sentinel named a master that answers ({parse(url).describe()})"
    return str(exc)


def _sentinel_args(url: SentinelURL, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """redis-py's Sentinel arguments: (for the sentinels, for the master)."""
    timeout = kwargs.get("socket_connect_timeout") or SENTINEL_TIMEOUT
    sentinel_kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if url.sentinel_username:
        sentinel_kwargs["username"] = url.sentinel_username
    if url.sentinel_password:
        sentinel_kwargs["password"] = url.sentinel_password
    master_kwargs = {"db": url.db, **kwargs}
    if url.username:
        master_kwargs["username"] = url.username
    if url.password:
        master_kwargs["password"] = url.password
    return sentinel_kwargs, master_kwargs


def client(url: str, **kwargs: Any):
    """A blocking ``redis.Redis`` for ``url`` (``kwargs``: redis-py's, e.g. ``socket_timeout``)."""
    import redis
    from redis.sentinel import Sentinel

    if not is_sentinel(url):
        return redis.Redis.from_url(url, **kwargs)
    parsed = parse(url)
    sentinel_kwargs, master_kwargs = _sentinel_args(parsed, kwargs)
    return Sentinel(parsed.sentinels, sentinel_kwargs=sentinel_kwargs).master_for(parsed.master, **master_kwargs)


def async_client(url: str, **kwargs: Any):
    """A ``redis.asyncio.Redis`` for ``url``."""
    import redis.asyncio as aredis
    from redis.asyncio.sentinel import Sentinel

    if not is_sentinel(url):
        return aredis.Redis.from_url(url, **kwargs)
    parsed = parse(url)
    sentinel_kwargs, master_kwargs = _sentinel_args(parsed, kwargs)
    return Sentinel(parsed.sentinels, sentinel_kwargs=sentinel_kwargs).master_for(parsed.master, **master_kwargs)


class SentinelPool:
    """Django's RedisCache ``pool_class`` (``OPTIONS["pool_class"]``): it calls ``from_url(LOCATION, **options)``
    and expects a connection pool, here redis-py's SentinelConnectionPool for the URL's master."""

    @classmethod
    def from_url(cls, url: str, **options: Any):
        from redis.sentinel import Sentinel, SentinelConnectionPool

        parsed = parse(url)
        sentinel_kwargs, master_kwargs = _sentinel_args(parsed, options)
        manager = Sentinel(parsed.sentinels, sentinel_kwargs=sentinel_kwargs)
        return SentinelConnectionPool(parsed.master, manager, **master_kwargs)
