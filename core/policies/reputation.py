"""Login reputation and the login rate limit (THREATS 13).

Two records per failed login:
- ``Reputation``: a long-lived score per (canonical username, client address), lowered by each
  failure and raised by each success; ReputationPolicy reads it (authentik's semantics).
- ``LoginFailure``: one row per failure, counted over a sliding window per canonical username AND
  per client address; the identification and password stages refuse to even check a password
  while either count is at its limit.

"Canonical username": case-folded, and an email address resolves to its user's username, so
"Alice", "alice" and "alice@example.com" share one counter. Unknown identifiers are case-folded
as typed, so guessing at non-existent accounts is limited too (and looks the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from core.accounts.models import User
from core.policies.models import LoginFailure, Reputation


@dataclass(frozen=True)
class Limits:
    per_username: int = 5
    per_ip: int = 20  # higher: many users can share one address (NAT, an outpost without delegation)
    window_seconds: int = 300


DEFAULT_LIMITS = Limits()


def canonical_username(identifier: str | None) -> str:
    ident = (identifier or "").strip()
    if "@" in ident:
        user = User.objects.filter(email__iexact=ident).order_by("pk").only("username").first()
        if user is not None:
            return user.username.casefold()
    return ident.casefold()


def _adjust(identifier: str, ip: str, delta: int) -> None:
    with transaction.atomic():
        updated = Reputation.objects.filter(identifier=identifier, ip=ip).update(
            score=F("score") + delta, updated=timezone.now())
        if not updated:
            Reputation.objects.get_or_create(identifier=identifier, ip=ip, defaults={"score": delta})


def record_failure(identifier: str | None, ip: str, limits: Limits = DEFAULT_LIMITS) -> None:
    canon = canonical_username(identifier)
    now = timezone.now()
    LoginFailure.objects.filter(at__lt=now - timedelta(seconds=limits.window_seconds)).delete()
    LoginFailure.objects.create(identifier=canon, ip=ip, at=now)
    _adjust(canon, ip, -1)


def record_success(identifier: str | None, ip: str) -> None:
    """Raise the score; failures in the window stay counted (a success must not reset an attack)."""
    _adjust(canonical_username(identifier), ip, 1)


def _wait(times: list, limit: int, window: timedelta, now) -> int:
    """Seconds until fewer than ``limit`` of ``times`` (ascending) fall in the window."""
    if len(times) < limit:
        return 0
    expires = times[len(times) - limit] + window
    return max(1, int((expires - now).total_seconds() + 0.999))


def retry_after(identifier: str | None, ip: str, limits: Limits = DEFAULT_LIMITS) -> int:
    """0 when a login may be attempted now, else the number of seconds to wait."""
    now = timezone.now()
    window = timedelta(seconds=limits.window_seconds)
    recent = LoginFailure.objects.filter(at__gte=now - window)
    by_user = list(recent.filter(identifier=canonical_username(identifier)).values_list("at", flat=True))
    by_ip = list(recent.filter(ip=ip).values_list("at", flat=True))
    return max(_wait(sorted(by_user), limits.per_username, window, now),
               _wait(sorted(by_ip), limits.per_ip, window, now))


def limited_message(seconds: int) -> str:
    return f"Too many failed attempts, try again in {seconds} seconds."


def score_for_ip(ip: str) -> int:
    return Reputation.objects.filter(ip=ip).aggregate(s=Sum("score"))["s"] or 0


def score_for_username(identifier: str | None) -> int:
    canon = canonical_username(identifier)
    return Reputation.objects.filter(identifier=canon).aggregate(s=Sum("score"))["s"] or 0
