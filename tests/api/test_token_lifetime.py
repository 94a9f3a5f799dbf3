"""A user's own API tokens and app passwords expire within a maximum lifetime (issue 8 item 11).

authentik caps app passwords at the ``goauthentik.io/user/token-maximum-lifetime`` attribute of the user or
their groups (a duration such as ``days=30``) and refuses a later ``expires`` with a 400; Gatehouse does the
same for both kinds of a person's tokens, with one year when no attribute says otherwise. A superuser's
requests are not capped (they may create non-expiring tokens at all).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.accounts.api_tokens import DEFAULT_TOKEN_MAXIMUM_LIFETIME
from core.accounts.models import Group, Token

pytestmark = pytest.mark.django_db

FOREVER = "9999-12-31T00:00:00Z"


@pytest.mark.parametrize("intent", ["api", "app_password"])
def test_a_user_cannot_create_a_token_that_never_expires(alice_api, intent):
    resp = alice_api.post("/api/v3/core/tokens/", {"identifier": f"forever-{intent}", "intent": intent,
                                                   "expires": FOREVER}, format="json")
    assert resp.status_code == 400, resp.content
    message = resp.json()["expires"][0]
    assert "9999-12-31" in message and "maximum lifetime" in message and "365 days" in message
    assert not Token.objects.filter(identifier=f"forever-{intent}").exists()
    # a null expiry is "never" as well
    resp = alice_api.post("/api/v3/core/tokens/", {"identifier": "null-expiry", "intent": intent,
                                                   "expires": None}, format="json")
    assert resp.status_code == 400 and "expires" in resp.json()


def test_within_the_limit_is_fine_and_updates_are_checked_too(alice_api):
    soon = (timezone.now() + timedelta(days=30)).isoformat()
    resp = alice_api.post("/api/v3/core/tokens/", {"identifier": "monthly", "intent": "app_password",
                                                   "expires": soon}, format="json")
    assert resp.status_code == 201, resp.content
    assert abs(parse_datetime(resp.json()["expires"]) - parse_datetime(soon)) < timedelta(seconds=1)
    later = alice_api.patch("/api/v3/core/tokens/monthly/", {"expires": FOREVER}, format="json")
    assert later.status_code == 400 and "maximum lifetime" in later.json()["expires"][0]
    assert alice_api.patch("/api/v3/core/tokens/monthly/", {"expires": None}, format="json").status_code == 400
    # without an expiry the token gets the short default
    plain = alice_api.post("/api/v3/core/tokens/", {"identifier": "plain"}, format="json").json()
    assert parse_datetime(plain["expires"]) < timezone.now() + timedelta(hours=1)


def test_the_group_attribute_sets_the_limit(alice, alice_api):
    group = Group.objects.create(name="contractors",
                                 attributes={"goauthentik.io/user/token-maximum-lifetime": "days=7"})
    alice.groups.add(group)
    eight_days = (timezone.now() + timedelta(days=8)).isoformat()
    resp = alice_api.post("/api/v3/core/tokens/", {"identifier": "week", "expires": eight_days}, format="json")
    assert resp.status_code == 400 and "7 days" in resp.json()["expires"][0]
    six_days = (timezone.now() + timedelta(days=6)).isoformat()
    assert alice_api.post("/api/v3/core/tokens/", {"identifier": "week", "expires": six_days},
                          format="json").status_code == 201


def test_a_broken_attribute_falls_back_to_the_default(alice, alice_api):
    alice.attributes = {"goauthentik.io/user/token-maximum-lifetime": "forever"}
    alice.save()
    resp = alice_api.post("/api/v3/core/tokens/", {"identifier": "x", "expires": FOREVER}, format="json")
    assert resp.status_code == 400 and "365 days" in resp.json()["expires"][0]
    assert DEFAULT_TOKEN_MAXIMUM_LIFETIME == timedelta(days=365)


def test_superusers_are_not_capped(admin):
    resp = admin.post("/api/v3/core/tokens/", {"identifier": "ci", "expires": FOREVER}, format="json")
    assert resp.status_code == 201, resp.content
