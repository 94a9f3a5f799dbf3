"""core.oidc.cleanup.expire_grants: expired codes, tokens and device codes go; what a live token
family still needs stays; and ``ak worker``'s pass (core.worker.expire_once) runs it."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.accounts.models import hash_key
from core.oidc import tokens
from core.oidc.cleanup import expire_grants
from core.oidc.models import AccessToken, AuthorizationCode, DeviceStatus, DeviceToken, RefreshToken
from core.worker import expire_once
from tests.oidc.helpers import exchange, get_code, introspect, token_request

pytestmark = pytest.mark.django_db

PAST = timedelta(minutes=-5)
FUTURE = timedelta(days=1)
KINDS = ("access_tokens", "refresh_tokens", "device_codes", "authorization_codes")


def _hash() -> str:
    return hash_key(secrets.token_urlsafe(24))


def code(provider, user, expires: timedelta, used: bool = True) -> AuthorizationCode:
    return AuthorizationCode.objects.create(provider=provider, user=user, expires=timezone.now() + expires,
                                            code_hash=_hash(), used=used, scope="openid offline_access")


def access(provider, user, expires: timedelta, from_code=None) -> AccessToken:
    return AccessToken.objects.create(provider=provider, user=user, expires=timezone.now() + expires,
                                      token_hash=_hash(), authorization_code=from_code, scope="openid")


def refresh(provider, user, expires: timedelta, from_code=None, revoked=False) -> RefreshToken:
    return RefreshToken.objects.create(provider=provider, user=user, expires=timezone.now() + expires,
                                       token_hash=_hash(), authorization_code=from_code, revoked=revoked,
                                       scope="openid offline_access")


def device(provider, expires: timedelta, status=DeviceStatus.PENDING) -> DeviceToken:
    return DeviceToken.objects.create(provider=provider, expires=timezone.now() + expires, status=status,
                                      device_code_hash=_hash(), user_code_hash=_hash())


def test_expired_rows_go_and_live_families_keep_their_code(make_provider, alice):
    provider = make_provider()
    # A family whose access token expired but whose refresh tokens live: the code (expired, used) stays.
    family = code(provider, alice, PAST)
    stale_access = access(provider, alice, PAST, family)
    rotated = refresh(provider, alice, FUTURE, family, revoked=True)  # kept: reuse must be recognised
    live_refresh = refresh(provider, alice, FUTURE, family)
    # A family that is entirely over: its tokens go, then its code in the same pass.
    over = code(provider, alice, PAST)
    access(provider, alice, PAST, over)
    refresh(provider, alice, PAST, over)
    # Loose rows.
    code(provider, alice, PAST, used=False)  # never redeemed
    live_code = code(provider, alice, FUTURE, used=False)
    live_access = access(provider, alice, FUTURE)
    device(provider, PAST)
    device(provider, PAST, DeviceStatus.USED)
    live_device = device(provider, FUTURE)

    counts = expire_grants(timezone.now())

    assert counts == {"access_tokens": 2, "refresh_tokens": 1, "device_codes": 2, "authorization_codes": 2}
    assert not AccessToken.objects.filter(pk=stale_access.pk).exists()
    assert set(AccessToken.objects.values_list("pk", flat=True)) == {live_access.pk}
    assert set(RefreshToken.objects.values_list("pk", flat=True)) == {rotated.pk, live_refresh.pk}
    assert set(AuthorizationCode.objects.values_list("pk", flat=True)) == {family.pk, live_code.pk}
    assert set(DeviceToken.objects.values_list("pk", flat=True)) == {live_device.pk}
    # The family link survived: reusing the rotated refresh token still revokes the live one.
    rotated.refresh_from_db()
    assert tokens.revoke_family(refresh=rotated) >= 1
    live_refresh.refresh_from_db()
    assert live_refresh.revoked is True
    # A second pass finds nothing more.
    assert expire_grants(timezone.now()) == dict.fromkeys(KINDS, 0)


def test_a_pass_is_bounded_and_the_next_one_continues(make_provider, alice):
    provider = make_provider()
    for _ in range(5):
        access(provider, alice, PAST)
    assert expire_grants(timezone.now(), batch=2, limit=3)["access_tokens"] == 3
    assert AccessToken.objects.count() == 2
    assert expire_grants(timezone.now(), batch=2, limit=3)["access_tokens"] == 2
    assert AccessToken.objects.count() == 0
    with pytest.raises(ValueError, match="batch must be at least 1"):
        expire_grants(timezone.now(), batch=0)


def test_refresh_works_after_the_expired_access_token_was_deleted(make_provider, browser):
    """Through the real endpoints: the access token's row goes when it expires; the refresh token
    issued with it still refreshes, and the code's family still ties the new tokens together."""
    client, _ = browser
    provider = make_provider()
    auth_code, verifier = get_code(client, provider, scope="openid profile email offline_access")
    issued = exchange(Client(), provider, auth_code, verifier).json()
    later = timezone.now() + timedelta(hours=2)  # past the access token's hour, within the refresh token's days

    counts = expire_grants(later)

    assert counts["access_tokens"] == 1 and counts["refresh_tokens"] == 0 and counts["authorization_codes"] == 0
    assert introspect(Client(), provider, issued["access_token"]).json()["active"] is False
    renewed = token_request(Client(), provider, {"grant_type": "refresh_token",
                                                 "refresh_token": issued["refresh_token"]})
    assert renewed.status_code == 200, renewed.content
    assert introspect(Client(), provider, renewed.json()["access_token"]).json()["active"] is True
    # Reusing the spent refresh token revokes the new one: the family is intact.
    reuse = token_request(Client(), provider, {"grant_type": "refresh_token",
                                               "refresh_token": issued["refresh_token"]})
    assert reuse.status_code == 400
    assert introspect(Client(), provider, renewed.json()["refresh_token"]).json()["active"] is False


def test_worker_pass_expires_grants(make_provider, alice):
    provider = make_provider()
    over = code(provider, alice, PAST)
    access(provider, alice, PAST, over)
    refresh(provider, alice, PAST, over)
    device(provider, PAST)
    kept = refresh(provider, alice, FUTURE)

    counts = expire_once()

    assert {k: counts[k] for k in KINDS} == {"access_tokens": 1, "refresh_tokens": 1, "device_codes": 1,
                                             "authorization_codes": 1}
    assert list(RefreshToken.objects.values_list("pk", flat=True)) == [kept.pk]
    assert AccessToken.objects.count() == 0 and AuthorizationCode.objects.count() == 0
