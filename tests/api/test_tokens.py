"""Tokens: the key is in the creation answer and through view_key only (tests/api/test_token_view_key.py)."""

import pytest

from core.accounts.models import Token
from core.events.models import Event

from .conftest import bearer

pytestmark = pytest.mark.django_db


def test_create_shows_key_once_and_it_works(admin, admin_user):
    resp = admin.post("/api/v3/core/tokens/", {"identifier": "ci-token", "intent": "api", "expiring": False},
                      format="json")
    assert resp.status_code == 201, resp.content
    key = resp.json()["key"]
    assert key and resp.json()["user"] == admin_user.pk
    assert bearer(key).get("/api/v3/core/users/me/").json()["user"]["username"] == "akadmin"
    again = admin.get("/api/v3/core/tokens/ci-token/").json()
    assert "key" not in again and again["expiring"] is False
    assert key not in str(admin.get("/api/v3/core/tokens/").content)
    view = admin.get("/api/v3/core/tokens/ci-token/view_key/")
    assert view.status_code == 200 and view.json() == {"key": key}  # as authentik, with a secret_view event
    assert Token.objects.get(identifier="ci-token").key_hash != key  # hashed for lookups


def test_view_key_of_outpost_token(admin, world):
    outpost = world["proxy_outpost"]
    resp = admin.get(f"/api/v3/core/tokens/{outpost.token_identifier}/view_key/")
    assert resp.status_code == 200 and resp.json() == {"key": world["keys"]["proxy-outpost"]}
    event = Event.objects.get(action="secret_view")
    assert event.context["token"] == outpost.token_identifier and event.user["username"] == "akadmin"
    # managed tokens are not edited through the API
    resp = admin.patch(f"/api/v3/core/tokens/{outpost.token_identifier}/", {"description": "x"}, format="json")
    assert resp.status_code == 400 and "managed" in resp.json()


def test_user_manages_only_own_tokens(alice_api, alice, admin_user, world):
    resp = alice_api.post("/api/v3/core/tokens/", {"identifier": "alice-pw", "intent": "app_password",
                                                   "user": admin_user.pk}, format="json")
    assert resp.status_code == 201, resp.content
    assert resp.json()["user"] == alice.pk  # cannot create for someone else
    assert resp.json()["key"]
    listed = [t["identifier"] for t in alice_api.get("/api/v3/core/tokens/").json()["results"]]
    assert sorted(listed) == ["alice-pw", "alice-token"]
    assert alice_api.get("/api/v3/core/tokens/admin-token/").status_code == 404
    outpost_token = world["proxy_outpost"].token_identifier
    assert alice_api.get(f"/api/v3/core/tokens/{outpost_token}/view_key/").status_code == 404
    no_expiry = alice_api.post("/api/v3/core/tokens/", {"identifier": "forever", "expiring": False}, format="json")
    assert no_expiry.status_code == 400 and "expiring" in no_expiry.json()
    bad_intent = alice_api.post("/api/v3/core/tokens/", {"identifier": "r", "intent": "recovery"}, format="json")
    assert bad_intent.status_code == 400 and "intent" in bad_intent.json()
    assert alice_api.delete("/api/v3/core/tokens/alice-pw/").status_code == 204


def test_outpost_account_cannot_mint_tokens(world):
    proxy = bearer(world["keys"]["proxy-outpost"])
    assert proxy.post("/api/v3/core/tokens/", {"identifier": "persist"}, format="json").status_code == 403
    assert proxy.get(f"/api/v3/core/tokens/{world['proxy_outpost'].token_identifier}/view_key/").status_code == 403


def test_set_key_superusers_only_and_not_for_managed_tokens(admin, alice, alice_api):
    from core.accounts.models import Token
    from tests.api.conftest import api_token

    api_token(alice, "alice-script")
    url = "/api/v3/core/tokens/alice-script/set_key/"
    assert alice_api.post(url, {"key": "x" * 32}, format="json").status_code == 403
    assert admin.post(url, {"key": "short"}, format="json").status_code == 400
    assert admin.post(url, {"key": "k" * 32}, format="json").status_code == 204
    assert Token.authenticate("k" * 32, ("api",)).identifier == "alice-script"
    Token.objects.filter(identifier="alice-script").update(managed="goauthentik.io/test")
    assert admin.post(url, {"key": "m" * 32}, format="json").status_code == 400
