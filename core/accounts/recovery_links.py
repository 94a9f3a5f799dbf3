"""One-time recovery links (``/recovery/use-token/?token=<key>``, core/flows/views.py ``use_recovery_token``): a
recovery-intent token whose key is the link's secret. Made by ``ak create_recovery_key``, the API's
``users/<pk>/recovery/`` and the admin's user page; the key is shown once, to whoever asked."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.accounts.models import Token, TokenIntents, User

RECOVERY_PATH = "/recovery/use-token/?token="


def recovery_key(user: User, lifetime: timedelta, description: str) -> str:
    """A new recovery token for ``user`` valid for ``lifetime``; its key (the link's secret)."""
    token = Token(identifier=f"ak-recovery-{user.pk}-{timezone.now():%Y%m%d%H%M%S%f}",
                  intent=TokenIntents.INTENT_RECOVERY, user=user, expiring=True,
                  expires=timezone.now() + lifetime, description=description)
    key = token.set_key()
    token.save()
    return key
