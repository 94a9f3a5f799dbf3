"""Deleting expired OAuth2/OIDC grant rows (``ak worker`` calls ``expire_grants(now)`` every pass).

What goes, and what must stay:
- access tokens, refresh tokens and device codes whose own ``expires`` has passed. Each kind expires
  on its own: a refresh token outlives the access tokens issued with it and stays until it expires
  itself, revoked or not (a revoked, rotated refresh token is how reuse is recognised, Security BCP
  §4.14.2);
- authorization codes that have expired AND from which no token remains. The code is what ties a
  token family together (core.oidc.tokens.revoke_family): deleting it while its tokens live would
  turn "refresh token reused -> revoke the family" into "revoke that one token".

Each pass deletes at most ``limit`` rows per kind, in chunks of ``batch``, so a large backlog is
worked off over several passes instead of one long transaction; a row that expires between two
passes waits for the next one. Deleting twice is harmless.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Exists, OuterRef

from core.oidc.models import AccessToken, AuthorizationCode, DeviceToken, RefreshToken

BATCH = 1000
LIMIT = 50_000


def _delete_in_batches(model: type[models.Model], queryset: models.QuerySet, batch: int, limit: int) -> int:
    """Delete the rows of ``queryset`` (of ``model``), ``batch`` primary keys at a time, ``limit`` at most."""
    if batch < 1 or limit < 0:
        raise ValueError(f"batch={batch} and limit={limit}: batch must be at least 1 and limit not negative")
    deleted = 0
    label = model._meta.label
    while deleted < limit:
        pks = list(queryset.order_by("pk").values_list("pk", flat=True)[: min(batch, limit - deleted)])
        if not pks:
            break
        _, per_model = model.objects.filter(pk__in=pks).delete()
        deleted += per_model.get(label, 0)
        if len(pks) < batch:
            break
    return deleted


def expire_grants(now: datetime, *, batch: int = BATCH, limit: int = LIMIT) -> dict[str, int]:
    """Delete expired grant rows as of ``now`` (timezone-aware); the number deleted per kind."""
    counts = {
        "access_tokens": _delete_in_batches(AccessToken, AccessToken.objects.filter(expires__lt=now), batch, limit),
        "refresh_tokens": _delete_in_batches(RefreshToken, RefreshToken.objects.filter(expires__lt=now), batch,
                                             limit),
        "device_codes": _delete_in_batches(DeviceToken, DeviceToken.objects.filter(expires__lt=now), batch, limit),
    }
    # After the tokens, so a code whose last token just went is deleted in the same pass. An expired
    # code can no longer be redeemed, so no new token can start pointing at it in the meantime.
    orphaned = (AuthorizationCode.objects.filter(expires__lt=now)
                .exclude(Exists(AccessToken.objects.filter(authorization_code=OuterRef("pk"))))
                .exclude(Exists(RefreshToken.objects.filter(authorization_code=OuterRef("pk")))))
    counts["authorization_codes"] = _delete_in_batches(AuthorizationCode, orphaned, batch, limit)
    return counts
