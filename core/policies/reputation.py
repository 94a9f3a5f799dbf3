"""Login reputation and the login rate limit (THREATS 13): slow an attacker down without locking anyone out.

The policy, in the order ``decide()`` applies it to an attempt at name N from address A (every count is
over the last ``WINDOW_SECONDS``; N is the canonical name, A the counted address, both defined below):

1. **N from A**: after ``PAIR_LIMIT`` failures, N waits at A until the oldest of them leaves the window.
   This is the old "five wrong passwords" lock, but it holds for that address only: an attacker who
   hammers akadmin from one address locks out nobody else, and the owner elsewhere not at all.
2. **N from many addresses**: past ``NAME_FREE_FAILURES`` failures against N (from anywhere), an attempt
   from an address that has itself failed against N waits a delay that doubles with each further failure
   (1, 2, 4 ... seconds, at most ``MAX_DELAY_SECONDS``) after the latest one. No captcha, no lock: the
   right password from an address with no failures against N is never refused, so the owner logs in
   from a clean address while a botnet hammers from others; every address the botnet has used is slowed
   to one guess per delay, all of them together.
3. **A spraying many names**: past ``ADDRESS_FREE_NAMES`` distinct names failing from A, an attempt from A
   at a name that has never logged in from A waits the same doubling delay after A's latest failure.
   Names that have logged in from A before (their colleagues behind the same NAT) are not slowed, and
   nothing locks: one address never locks out everyone behind it.

Who is N: the canonical name (core/accounts/usernames.py, NFKC + casefold); when it names a user by
username or email, that user's canonical username, so "Alice", "ALICE", "ａｌｉｃｅ" and
"alice@example.com" share one counter, and "admın" (dotless ı) -- which is not admin and cannot log in
as admin -- has its own. Unknown names are counted as typed (canonically), so guessing at accounts that
do not exist is limited the same way and looks the same.

Which A: the address the trusted chain resolves to (core/client_ip.py; an outpost's delegated address),
never the raw header. A peer that vouches for addresses (a trusted proxy putting X-Forwarded-For, an
outpost delegating X-authentik-remote-ip) may vouch for ``PEER_CLAIMS`` distinct failing addresses per
window; a further fresh one is counted as the peer's own address. So rotating X-Forwarded-For from a
machine inside the trusted networks buys ``PEER_CLAIMS`` fresh starts, not a fresh count per request.

Atomic: ``start_attempt`` checks and reserves in one transaction, serialised per name and per address
(PostgreSQL advisory locks; on SQLite the transaction is IMMEDIATE, settings.py, so writers queue), and
the reservation is a failure row until ``record_success`` removes it. Forty concurrent wrong passwords
therefore get exactly ``PAIR_LIMIT`` checks, not one more per thread in flight.

``Reputation`` keeps a long-lived score per (name, address) for ReputationPolicy (authentik's semantics)
and when that name last logged in from that address (rule 3).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from core.accounts.usernames import canonical, find_user
from core.policies.models import LoginFailure, Reputation

# The numbers, and why.
WINDOW_SECONDS = 300  # what a failure is remembered for; also the longest any wait can last
PAIR_LIMIT = 5  # one name from one address: five typos are a person, a sixth try waits out the window
NAME_FREE_FAILURES = 5  # against one name from anywhere before the slow-down (a user on two devices mistyping)
ADDRESS_FREE_NAMES = 10  # distinct names failing from one address: an office NAT at a bad Monday morning
MAX_DELAY_SECONDS = 60  # the doubling delay's ceiling: one guess a minute is useless to an attacker
PEER_CLAIMS = 16  # fresh failing addresses one proxy/outpost may vouch for per window; more are invented


@dataclass(frozen=True)
class Limits:
    """The policy's numbers in one value (tests and callers may pass their own)."""

    pair_limit: int = PAIR_LIMIT
    name_free_failures: int = NAME_FREE_FAILURES
    address_free_names: int = ADDRESS_FREE_NAMES
    max_delay_seconds: int = MAX_DELAY_SECONDS
    peer_claims: int = PEER_CLAIMS
    window_seconds: int = WINDOW_SECONDS

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)

    def delay(self, excess: int) -> timedelta:
        """The doubling delay for ``excess`` (>= 1) failures over the free ones."""
        return timedelta(seconds=min(self.max_delay_seconds, 2 ** min(excess - 1, 30)))


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class History:
    """What the window holds about one attempt, as plain values (``decide`` needs no database)."""

    pair_failures: int = 0  # of this name from this address
    pair_latest: tuple[datetime, ...] = ()  # the latest PAIR_LIMIT of them, oldest first (read when needed)
    name_failures: int = 0  # against this name from anywhere
    name_last: datetime | None = None
    address_names: int = 0  # distinct names failing from this address
    address_last: datetime | None = None
    known_here: bool = False  # this name has logged in from this address before


def decide(history: History, now: datetime, limits: Limits = DEFAULT_LIMITS) -> int:
    """Seconds the attempt must wait (0: check the password now). Rules 1-3 of the module docstring."""
    until: list[datetime] = []
    if history.pair_failures >= limits.pair_limit and history.pair_latest:
        until.append(history.pair_latest[-limits.pair_limit] + limits.window)
    excess = history.name_failures - limits.name_free_failures
    if history.pair_failures and excess > 0 and history.name_last is not None:
        until.append(history.name_last + limits.delay(excess))
    excess = history.address_names - limits.address_free_names
    if not history.known_here and excess > 0 and history.address_last is not None:
        until.append(history.address_last + limits.delay(excess))
    wait = max((u - now).total_seconds() for u in until) if until else 0
    return max(1, int(wait + 0.999)) if wait > 0 else 0


# --- who and where --------------------------------------------------------------------------------


def canonical_username(identifier: str | None) -> str:
    """The counter's name: the canonical username of the user ``identifier`` names, else its canonical form."""
    ident = (identifier or "").strip()
    if "@" in ident:  # a username's canonical form is already its lookup key; an email needs the lookup
        user = find_user(ident, ["username", "email"])
        if user is not None:
            return user.username_canonical or canonical(user.username)
    return canonical(ident)


def counted_address(ip: str, peer: str | None, now: datetime, limits: Limits = DEFAULT_LIMITS) -> str:
    """``ip``, or ``peer`` when ``ip`` is fresh and the peer already vouched for its share of addresses."""
    if not peer or peer == ip:
        return ip
    recent = LoginFailure.objects.filter(at__gte=now - limits.window)
    if recent.filter(ip=ip).exists():
        return ip
    claimed = recent.filter(peer=peer).exclude(ip=peer).values("ip").distinct().count()
    return ip if claimed < limits.peer_claims else peer


def _history(name: str, address: str, now: datetime, limits: Limits) -> History:
    recent = LoginFailure.objects.filter(at__gte=now - limits.window)
    by_name, by_address = Q(identifier=name), Q(ip=address)
    counts = recent.filter(by_name | by_address).aggregate(
        pair_failures=Count("id", filter=by_name & by_address),
        name_failures=Count("id", filter=by_name), name_last=Max("at", filter=by_name),
        address_names=Count("identifier", filter=by_address, distinct=True),
        address_last=Max("at", filter=by_address))
    latest = ()
    if counts["pair_failures"] >= limits.pair_limit:
        latest = tuple(reversed(recent.filter(by_name & by_address).order_by("-at")
                                .values_list("at", flat=True)[:limits.pair_limit]))
    known = counts["address_names"] > limits.address_free_names and Reputation.objects.filter(
        identifier=name, ip=address, last_success__isnull=False).exists()
    return History(pair_latest=latest, known_here=known, **counts)


def _lock(*keys: str) -> None:
    """Serialise check-and-reserve per key until the transaction ends (PostgreSQL); SQLite's IMMEDIATE
    transactions already serialise every writer."""
    if connection.vendor != "postgresql":
        return
    ids = [int.from_bytes(hashlib.sha256(f"gatehouse-login:{key}".encode()).digest()[:8], "big", signed=True)
           for key in sorted(set(keys))]  # one order everywhere (left to right): no deadlock between attempts
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["pg_advisory_xact_lock(%s)"] * len(ids)), ids)


# --- the calls the stages make --------------------------------------------------------------------


def retry_after(identifier: str | None, ip: str, limits: Limits = DEFAULT_LIMITS, *, peer: str = "") -> int:
    """0 when a login may be attempted now, else the number of seconds to wait. Reserves nothing."""
    name, now = canonical_username(identifier), timezone.now()
    return decide(_history(name, counted_address(ip, peer, now, limits), now, limits), now, limits)


def start_attempt(identifier: str | None, ip: str, limits: Limits = DEFAULT_LIMITS, *, peer: str = "") -> int:
    """Check and reserve atomically: 0 with one attempt reserved (a failure until ``record_success``),
    or the seconds to wait (nothing reserved, and the password must not be checked)."""
    name = canonical_username(identifier)
    with transaction.atomic(savepoint=False):  # the lock lasts until the enclosing transaction ends
        _lock(f"name:{name}", f"address:{ip}", *([f"address:{peer}"] if peer else []))
        now = timezone.now()
        address = counted_address(ip, peer, now, limits)
        wait = decide(_history(name, address, now, limits), now, limits)
        if not wait:
            LoginFailure.objects.create(identifier=name, ip=address, peer=peer or None, at=now, pending=True)
    return wait


def _reserved(name: str, ip: str, peer: str):
    return LoginFailure.objects.filter(identifier=name, pending=True, ip__in={ip, peer or ip}).order_by("-at")


def record_failure(identifier: str | None, ip: str, limits: Limits = DEFAULT_LIMITS, *, peer: str = "") -> str:
    """The reserved attempt failed (or, without a reservation, one failure now). Returns the canonical name,
    for the login_failed event."""
    name, now = canonical_username(identifier), timezone.now()
    LoginFailure.objects.filter(at__lt=now - limits.window).delete()
    row = _reserved(name, ip, peer).first()
    if row is not None:
        LoginFailure.objects.filter(pk=row.pk).update(pending=False)
        address = row.ip
    else:
        address = counted_address(ip, peer, now, limits)
        LoginFailure.objects.create(identifier=name, ip=address, peer=peer or None, at=now)
    _adjust(name, address, -1)
    return name


def record_success(identifier: str | None, ip: str, *, peer: str = "") -> None:
    """The reserved attempt succeeded: it is no failure. Failures already in the window stay counted (a
    success must not reset an attack); the name is now known at this address (rule 3)."""
    name = canonical_username(identifier)
    row = _reserved(name, ip, peer).first()
    if row is not None:
        row.delete()  # the instance, not a queryset: one DELETE, no collector SELECT first
    _adjust(name, row.ip if row is not None else ip, 1, last_success=timezone.now())


def release(identifier: str | None, ip: str, *, peer: str = "") -> None:
    """The reserved attempt was no attempt (nothing to check, e.g. an empty code): forget the reservation."""
    row = _reserved(canonical_username(identifier), ip, peer).first()
    if row is not None:
        row.delete()


def _adjust(identifier: str, ip: str, delta: int, **fields) -> None:
    updated = Reputation.objects.filter(identifier=identifier, ip=ip).update(
        score=F("score") + delta, updated=timezone.now(), **fields)
    if not updated:  # first time for this pair; a concurrent first time makes get_or_create fetch instead
        Reputation.objects.get_or_create(identifier=identifier, ip=ip, defaults={"score": delta, **fields})


def limited_message(seconds: int) -> str:
    return f"Too many failed attempts, try again in {seconds} seconds."


# --- ReputationPolicy -------------------------------------------------------------------------------


def score_for_ip(ip: str) -> int:
    return Reputation.objects.filter(ip=ip).aggregate(s=Sum("score"))["s"] or 0


def score_for_username(identifier: str | None) -> int:
    canon = canonical_username(identifier)
    return Reputation.objects.filter(identifier=canon).aggregate(s=Sum("score"))["s"] or 0
