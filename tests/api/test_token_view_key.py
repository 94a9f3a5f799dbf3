"""``GET /api/v3/core/tokens/<identifier>/view_key/`` answers the key again to the token's owner and
to superusers, with a ``secret_view`` event, as authentik does (scripts read keys that way). The key is
kept sealed at rest (AES-GCM under a key derived from AUTHENTIK_SECRET_KEY); authentication still
looks tokens up by sha256 only. Tokens made before keys were kept answer 410 saying how to get a new
one; a key sealed under another secret key answers 409 instead of a key the core would refuse."""

from __future__ import annotations

import pytest
from django.db import connection

from core.accounts.models import Token, TokenIntents, User
from core.events.models import Event

from .conftest import api_token, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.com", "bob-pw")


def _create(client, identifier: str, intent: str = "api") -> str:
    response = client.post("/api/v3/core/tokens/", {"identifier": identifier, "intent": intent}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["key"]


def test_owner_reads_own_key_again_with_an_event(alice_api, alice):
    for identifier, intent in (("alice-script", "api"), ("alice-mail", "app_password")):
        key = _create(alice_api, identifier, intent)
        response = alice_api.get(f"/api/v3/core/tokens/{identifier}/view_key/")
        assert response.status_code == 200, response.content
        assert response.json() == {"key": key}
        event = Event.objects.filter(action="secret_view").latest("created")
        assert event.user["username"] == "alice" and event.context["token"] == identifier
        assert key not in str(event.context)
    assert bearer(alice_api.get("/api/v3/core/tokens/alice-script/view_key/").json()["key"]) \
        .get("/api/v3/core/users/me/").json()["user"]["username"] == "alice"


def test_superuser_reads_anyones_key(admin, alice_api, alice):
    key = _create(alice_api, "alice-ci")
    response = admin.get("/api/v3/core/tokens/alice-ci/view_key/")
    assert response.status_code == 200 and response.json() == {"key": key}
    event = Event.objects.filter(action="secret_view").latest("created")
    assert event.user["username"] == "akadmin" and event.context["token"] == "alice-ci"


def test_nobody_else_reads_a_key(alice_api, alice, bob):
    _create(alice_api, "alice-private")
    bob_api = bearer(api_token(bob, "bob-token"))
    assert bob_api.get("/api/v3/core/tokens/alice-private/view_key/").status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v3/core/tokens/alice-private/view_key/").status_code in (401, 403)
    assert not Event.objects.filter(action="secret_view").exists()


def test_key_is_not_stored_in_the_clear(alice_api):
    key = _create(alice_api, "alice-sealed")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM authentik_core_token WHERE identifier = %s", ["alice-sealed"])
        row = cursor.fetchone()
    assert row is not None and not any(isinstance(v, str) and key in v for v in row)
    token = Token.objects.get(identifier="alice-sealed")
    assert token.key_sealed and token.key_sealed != key


def test_token_from_before_keys_were_kept_says_how_to_get_a_new_one(alice_api, alice):
    legacy = Token(identifier="alice-old", intent=TokenIntents.INTENT_API, user=alice)
    legacy.set_key()
    legacy.key_sealed = ""  # as every token made before this change: only the hash
    legacy.save()
    response = alice_api.get("/api/v3/core/tokens/alice-old/view_key/")
    assert response.status_code == 410, response.content
    detail = response.json()["detail"]
    assert "alice-old" in detail and "before" in detail and "create a new token" in detail
    assert not Event.objects.filter(action="secret_view").exists()


def test_a_key_sealed_under_another_secret_key_is_not_handed_out(alice_api, settings):
    _create(alice_api, "alice-moved")
    settings.SECRET_KEY = "a-different-secret-key-after-a-restore-" + "z" * 20
    response = alice_api.get("/api/v3/core/tokens/alice-moved/view_key/")
    assert response.status_code == 409, response.content
    assert "AUTHENTIK_SECRET_KEY" in response.json()["detail"]


def test_outpost_token_key_still_readable_by_a_superuser(admin, world):
    outpost = world["proxy_outpost"]
    response = admin.get(f"/api/v3/core/tokens/{outpost.token_identifier}/view_key/")
    assert response.status_code == 200 and response.json() == {"key": world["keys"]["proxy-outpost"]}


def test_bootstrap_style_key_set_by_value_is_readable(admin, admin_user):
    token = Token(identifier="from-blueprint", intent=TokenIntents.INTENT_API, user=admin_user, expiring=False,
                  expires=None)
    token.set_key("a-key-written-in-a-blueprint-0123456789")
    token.save()
    response = admin.get("/api/v3/core/tokens/from-blueprint/view_key/")
    assert response.json() == {"key": "a-key-written-in-a-blueprint-0123456789"}
