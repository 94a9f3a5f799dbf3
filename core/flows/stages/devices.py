"""A user's confirmed authenticator devices, and the TOTP / static code checks.

TOTP (RFC 6238) via pyotp, one time step of clock drift either way; ``last_t`` makes every code
single-use (a replayed code, even inside its 30 s window, is refused). The update is a
compare-and-set on ``last_t`` so two concurrent uses of one code cannot both pass.
Static codes are deleted on use, again with a count check so only one concurrent use wins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyotp
from django.utils import timezone

from core.flows.models import StaticDevice, StaticToken, TOTPDevice, WebAuthnDevice


@dataclass(frozen=True)
class Device:
    device_class: str
    pk: int
    name: str
    last_used: Any
    obj: Any


def user_devices(user) -> list[Device]:
    if user is None or not getattr(user, "pk", None):
        return []
    found = [Device("totp", d.pk, d.name, d.last_used, d) for d in TOTPDevice.objects.filter(user=user, confirmed=True)]
    found += [Device("static", d.pk, d.name, d.last_used, d)
              for d in StaticDevice.objects.filter(user=user, confirmed=True) if d.token_set.exists()]
    found += [Device("webauthn", d.pk, d.name, d.last_used, d)
              for d in WebAuthnDevice.objects.filter(user=user, confirmed=True)]
    return found


def totp_step(key: str, digits: int, period: int, code: str, now: float | None = None) -> int | None:
    """The time step ``code`` is valid for (current, previous or next), else None."""
    if not code.isdigit() or len(code) != digits:
        return None
    now = time.time() if now is None else now
    totp = pyotp.TOTP(key, digits=digits, interval=period)
    current = int(now // period)
    for step in (current, current - 1, current + 1):
        if totp.generate_otp(step) == code:
            return step
    return None


def verify_totp(device: TOTPDevice, code: str) -> bool:
    step = totp_step(device.key, device.digits, device.period, code)
    if step is None:
        return False
    # Compare-and-set: only a step later than the last accepted one counts (replay protection).
    won = TOTPDevice.objects.filter(pk=device.pk, last_t__lt=step).update(last_t=step, last_used=timezone.now())
    return won == 1


def verify_static(device: StaticDevice, code: str) -> bool:
    token = StaticToken.objects.filter(device=device, token=code).first()
    if token is None:
        return False
    deleted, _ = StaticToken.objects.filter(pk=token.pk).delete()
    if deleted != 1:
        return False
    StaticDevice.objects.filter(pk=device.pk).update(last_used=timezone.now())
    return True
