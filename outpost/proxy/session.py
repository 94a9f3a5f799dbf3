"""Proxy sessions: the cookie codec (pure) and the stores behind one Protocol (DESIGN.md §2 "Proxy sessions").

* The cookie value is ``<session id>.<HMAC-SHA256(cookie_secret, client_id|id)>``: a tampered, foreign or
  malformed cookie is rejected before any store lookup, and never raises (THREATS 1, 8).
* Only signed-in sessions are stored. Before login the cookie carries a signed random id with no record
  (the pre-login id the OAuth ``state`` is bound to), so anonymous traffic costs no memory; the id is
  replaced by a fresh one at login (session fixation, THREATS 7).
* Sessions are indexed by ``sid`` (the core session hash, SESSION_END) and ``sub`` (sign-out).
* MemoryStore keeps a file snapshot (atomic, mode 0600, written periodically and at close, loaded at start)
  so an outpost restart loses no session (user-pain: authentik #19740, #20093). RedisStore is shared by
  replicas (no sticky sessions, #18098) with a small LRU in front that every replica invalidates through
  Redis pub/sub when a session is deleted anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

LOGGER = logging.getLogger("gatehouse.outpost.proxy.session")

MAX_COOKIE_LENGTH = 256
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of 32 bytes, no padding
_MAC = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_session_id() -> str:
    """32 random bytes, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def _mac(cookie_secret: str, client_id: str, session_id: str) -> str:
    digest = hmac.new(cookie_secret.encode(), f"authentik_proxy|{client_id}|{session_id}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_cookie(session_id: str, *, cookie_secret: str, client_id: str) -> str:
    return f"{session_id}.{_mac(cookie_secret, client_id, session_id)}"


def unsign_cookie(value: str | None, *, cookie_secret: str, client_id: str) -> str | None:
    """The session id in a cookie value, or None for anything not signed by us for this client. Never raises."""
    if not isinstance(value, str) or not value or len(value) > MAX_COOKIE_LENGTH:
        return None
    session_id, dot, mac = value.partition(".")
    if not dot or not _ID.match(session_id) or not _MAC.match(mac):
        return None
    if not hmac.compare_digest(mac, _mac(cookie_secret, client_id, session_id)):
        return None
    return session_id


def cookie_attributes(*, secure: bool, cookie_domain: str = "", max_age: int | None = None) -> dict[str, Any]:
    """Keyword arguments for aiohttp's ``set_cookie`` (reference §2.9): Path=/, HttpOnly, SameSite=Lax,
    Secure on https, Domain in forward_domain mode, Max-Age when known."""
    attrs: dict[str, Any] = {"path": "/", "httponly": True, "samesite": "Lax", "secure": secure}
    if cookie_domain:
        attrs["domain"] = cookie_domain
    if max_age is not None:
        attrs["max_age"] = max(0, int(max_age))
    return attrs


@dataclass
class Session:
    """A signed-in session for one application (``client_id``)."""

    id: str = field(repr=False)  # the cookie's id
    client_id: str
    claims: dict[str, Any]
    raw_token: str = field(default="", repr=False)  # the access token (X-authentik-jwt, id_token_hint at sign-out)
    id_token: str = field(default="", repr=False)
    expires_at: float = 0.0
    created_at: float = field(default_factory=time.time)

    @property
    def sub(self) -> str:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else ""

    @property
    def username(self) -> str:
        """``preferred_username`` (X-authentik-username); empty when the provider's scopes do not carry it."""
        name = self.claims.get("preferred_username")
        return name if isinstance(name, str) else ""

    @property
    def sid(self) -> str:
        sid = self.claims.get("sid")
        return sid if isinstance(sid, str) else ""

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at <= (time.time() if now is None else now)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Session | None:
        """Rebuild from stored JSON; None (never an exception) for anything that is not a session."""
        try:
            if not isinstance(data, dict) or not isinstance(data.get("claims"), dict):
                return None
            session = cls(id=str(data["id"]), client_id=str(data["client_id"]), claims=data["claims"],
                          raw_token=str(data.get("raw_token", "")), id_token=str(data.get("id_token", "")),
                          expires_at=float(data["expires_at"]), created_at=float(data.get("created_at", 0)))
        except (KeyError, TypeError, ValueError):
            return None
        return session if _ID.match(session.id) else None


class SessionStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, session_id: str) -> Session | None:
        """The unexpired session, or None."""

    async def put(self, session: Session) -> None: ...

    async def delete(self, session_id: str) -> None: ...

    async def delete_by_sid(self, sid: str) -> int:
        """End every session created from the core session ``sid`` (SESSION_END); returns how many."""

    async def delete_by_sub(self, sub: str) -> int:
        """End every session of the user ``sub`` (sign-out, as authentik does across applications)."""


class MemoryStore:
    """In-process sessions with an optional file snapshot; one outpost process only."""

    def __init__(self, snapshot_path: Path | str | None = None, *, snapshot_interval: float = 30.0,
                 clock: Callable[[], float] = time.time):
        self.path = Path(snapshot_path) if snapshot_path else None
        self.interval = snapshot_interval
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._by_sid: dict[str, set[str]] = {}
        self._by_sub: dict[str, set[str]] = {}
        self._dirty = False
        self._task: asyncio.Task | None = None

    # -- lifecycle
    async def start(self) -> None:
        if self.path is not None:
            await asyncio.to_thread(self.load)
            self._task = asyncio.create_task(self._snapshot_loop(), name="proxy-session-snapshot")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.path is not None:
            await asyncio.to_thread(self.save)

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.purge()
            if self._dirty:
                try:
                    await asyncio.to_thread(self.save)
                except OSError as exc:
                    LOGGER.error("cannot write session snapshot %s: %s; check the directory is writable",
                                 self.path, exc)

    # -- snapshot
    def save(self) -> None:
        """Write every unexpired session to the snapshot file atomically (temp file + rename), mode 0600."""
        if self.path is None:
            return
        now = self.clock()
        data = [json.loads(s.to_json()) for s in self._sessions.values() if not s.expired(now)]
        self._dirty = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sessions-", dir=self.path.parent)  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"version": 1, "sessions": data}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def load(self) -> int:
        """Load the snapshot if there is one; a corrupt file is logged and moved aside, never fatal."""
        if self.path is None or not self.path.exists():
            return 0
        try:
            raw = json.loads(self.path.read_text())
            items = raw["sessions"] if isinstance(raw, dict) else None
            if not isinstance(items, list):
                raise ValueError("no 'sessions' list")
        except (OSError, ValueError, KeyError) as exc:
            aside = self.path.with_suffix(".corrupt")
            LOGGER.error("session snapshot %s unreadable (%s); moved to %s, starting empty", self.path, exc, aside)
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            return 0
        now, count = self.clock(), 0
        for item in items:
            session = Session.from_dict(item)
            if session is not None and not session.expired(now):
                self._index(session)
                count += 1
        return count

    # -- store
    def _index(self, session: Session) -> None:
        self._drop(session.id)
        self._sessions[session.id] = session
        if session.sid:
            self._by_sid.setdefault(session.sid, set()).add(session.id)
        if session.sub:
            self._by_sub.setdefault(session.sub, set()).add(session.id)

    def _drop(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        for index, key in ((self._by_sid, session.sid), (self._by_sub, session.sub)):
            ids = index.get(key)
            if ids is not None:
                ids.discard(session_id)
                if not ids:
                    del index[key]
        self._dirty = True
        return True

    def purge(self) -> int:
        now = self.clock()
        expired = [sid for sid, s in self._sessions.items() if s.expired(now)]
        for session_id in expired:
            self._drop(session_id)
        return len(expired)

    def __len__(self) -> int:
        return len(self._sessions)

    async def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expired(self.clock()):
            self._drop(session_id)
            return None
        return session

    async def put(self, session: Session) -> None:
        self._index(session)
        self._dirty = True

    async def delete(self, session_id: str) -> None:
        self._drop(session_id)

    async def delete_by_sid(self, sid: str) -> int:
        ids = list(self._by_sid.get(sid, ())) if sid else []
        return sum(self._drop(i) for i in ids)

    async def delete_by_sub(self, sub: str) -> int:
        ids = list(self._by_sub.get(sub, ())) if sub else []
        return sum(self._drop(i) for i in ids)


class RedisStore:
    """Sessions in Redis (``redis.asyncio``), shared by every replica.

    Keys: ``<prefix>s:<id>`` (JSON, TTL = session expiry), ``<prefix>sid:<sid>`` and ``<prefix>sub:<sub>``
    (sets of ids, TTL extended to the longest member). An LRU of at most ``cache_size`` entries, each
    trusted for at most ``cache_ttl`` seconds, sits in front; deletions publish the ids on
    ``<prefix>invalidate`` and every replica drops them from its LRU. If the subscription breaks, the LRU
    is cleared (messages may have been missed) and the subscription is re-established."""

    def __init__(self, redis: Any, *, prefix: str = "gatehouse:proxy:", cache_size: int = 4096,
                 cache_ttl: float = 5.0, clock: Callable[[], float] = time.time):
        self.redis = redis
        self.prefix = prefix
        self.cache_size = cache_size
        self.cache_ttl = cache_ttl
        self.clock = clock
        self._cache: OrderedDict[str, tuple[Session, float]] = OrderedDict()
        self._task: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    @property
    def channel(self) -> str:
        return f"{self.prefix}invalidate"

    def _key(self, kind: str, value: str) -> str:
        return f"{self.prefix}{kind}:{value}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="proxy-session-invalidations")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._cache.clear()

    async def _listen(self) -> None:
        from redis.exceptions import RedisError

        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    self._invalidate_message(message.get("data"))
            except (RedisError, OSError) as exc:
                LOGGER.warning("session invalidation channel lost (%s); clearing the local cache", exc)
                self._cache.clear()
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _invalidate_message(self, data: Any) -> None:
        try:
            ids = json.loads(data)
        except (TypeError, ValueError):
            self._cache.clear()  # an unreadable invalidation: forget everything rather than keep stale data
            return
        if not isinstance(ids, list):
            self._cache.clear()
            return
        for session_id in ids:
            if isinstance(session_id, str):
                self._cache.pop(session_id, None)

    def _cache_get(self, session_id: str) -> Session | None:
        entry = self._cache.get(session_id)
        if entry is None:
            return None
        session, fetched = entry
        now = self.clock()
        if now - fetched > self.cache_ttl or session.expired(now):
            self._cache.pop(session_id, None)
            return None
        self._cache.move_to_end(session_id)
        return session

    def _cache_put(self, session: Session) -> None:
        self._cache[session.id] = (session, self.clock())
        self._cache.move_to_end(session.id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def get(self, session_id: str) -> Session | None:
        cached = self._cache_get(session_id)
        if cached is not None:
            return cached
        raw = await self.redis.get(self._key("s", session_id))
        if raw is None:
            return None
        try:
            session = Session.from_dict(json.loads(raw))
        except (TypeError, ValueError):
            session = None
        if session is None or session.id != session_id or session.expired(self.clock()):
            return None
        self._cache_put(session)
        return session

    async def put(self, session: Session) -> None:
        ttl = int(session.expires_at - self.clock()) + 1
        if ttl <= 0:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("s", session.id), session.to_json(), ex=ttl)
            for kind, value in (("sid", session.sid), ("sub", session.sub)):
                if value:
                    key = self._key(kind, value)
                    pipe.sadd(key, session.id)
                    pipe.expire(key, ttl, gt=True)
                    pipe.expire(key, ttl, nx=True)
            await pipe.execute()
        self._cache_put(session)

    async def _delete_ids(self, ids: list[str], index_key: str | None = None) -> int:
        if not ids and index_key is None:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            for session_id in ids:
                pipe.delete(self._key("s", session_id))
            if index_key is not None:
                pipe.delete(index_key)
            results = await pipe.execute()
        for session_id in ids:
            self._cache.pop(session_id, None)
        if ids:
            await self.redis.publish(self.channel, json.dumps(ids))
        return sum(1 for r in results[:len(ids)] if r)

    async def delete(self, session_id: str) -> None:
        raw = await self.redis.get(self._key("s", session_id))
        await self._delete_ids([session_id])
        session = Session.from_dict(json.loads(raw)) if raw else None
        if session is not None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for kind, value in (("sid", session.sid), ("sub", session.sub)):
                    if value:
                        pipe.srem(self._key(kind, value), session_id)
                await pipe.execute()

    async def _delete_index(self, kind: str, value: str) -> int:
        if not value:
            return 0
        key = self._key(kind, value)
        members = await self.redis.smembers(key)
        ids = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
        return await self._delete_ids(ids, key)

    async def delete_by_sid(self, sid: str) -> int:
        return await self._delete_index("sid", sid)

    async def delete_by_sub(self, sub: str) -> int:
        return await self._delete_index("sub", sub)
