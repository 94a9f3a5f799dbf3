"""The credential cache of the LDAP and RADIUS outposts (``bind_mode=cached`` on their providers).

A successful login through the core (an LDAP simple bind, a RADIUS PAP Access-Request) is remembered with the
core's answer, so the same name and password within the TTL are answered without the core's flow (argon2, the
policies: tens of milliseconds) at the price of one scrypt (~1 ms). Revocation rests on the link: each handler
empties its cache on every configuration refresh, which the core triggers for every user, group, membership,
policy and provider change. A password carrying a one-time code is never cached by the handlers (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from protocols.outpost import split_mfa


def carries_code(password: str, mfa_support: bool) -> bool:
    """True when the core would read ``password`` as ``secret;123456`` (a one-time code): never cached, since the
    same string again within the TTL would replay the code."""
    return bool(mfa_support) and split_mfa(password, True)[1] is not None


class BindCache:
    """``bind_mode=cached``: successful logins remembered for ``ttl`` seconds, keyed on (provider, case-folded
    username) and checked against scrypt(password, per-entry salt) -- never the password itself. Only
    successes are kept. Everything is dropped whenever the link refreshes (the core sends TRIGGER_UPDATE for
    every user, group, membership, policy and provider change: a password change, a deactivation or a group
    removal empties the cache), and an entry goes when SESSION_END names the core session its bind opened."""

    # scrypt N=2^9, r=8: 512 KiB and ~1 ms a check (2^11 took ~4.9 ms, more than the 2 ms a cached bind may
    # cost). Enough for what it guards: the cache lives only in this process's memory and its entries expire
    # after the TTL, so the hash only has to stop a memory dump from yielding passwords cheaply; a guesser
    # holding a dump still pays a memory-hard ~1 ms per guess and per entry (salted), against nanoseconds
    # for a plain digest.
    SCRYPT = {"n": 2**9, "r": 8, "p": 1, "dklen": 32}

    def __init__(self, ttl: float = 300.0, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._entries: OrderedDict[tuple, tuple[bytes, bytes, float, object]] = OrderedDict()

    @classmethod
    def _digest(cls, password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode("utf-8", errors="surrogatepass"), salt=salt, **cls.SCRYPT)

    def get(self, provider_pk, username: str, password: str):
        key = (provider_pk, username.casefold())
        entry = self._entries.get(key)
        if entry is None:
            return None
        salt, digest, expires, answer = entry
        if self.clock() >= expires:
            self._entries.pop(key, None)
            return None
        return answer if hmac.compare_digest(self._digest(password, salt), digest) else None

    def put(self, provider_pk, username: str, password: str, answer) -> None:
        salt = secrets.token_bytes(16)
        self._entries[(provider_pk, username.casefold())] = (salt, self._digest(password, salt),
                                                             self.clock() + self.ttl, answer)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self, *_args) -> None:
        self._entries.clear()

    def drop_session(self, session_id: str) -> None:
        for key in [k for k, v in self._entries.items() if getattr(v[3], "session_id", None) == session_id]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
