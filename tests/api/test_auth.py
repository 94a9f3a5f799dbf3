"""Bearer token authentication and the three roles (superuser, outpost, any user)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.accounts.models import Token, TokenIntents

from .conftest import api_token, bearer

pytestmark = pytest.mark.django_db


def test_no_credentials_is_401_with_bearer_challenge():
    resp = APIClient().get("/api/v3/core/users/")
    assert resp.status_code == 401
    assert resp["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in resp.json()


def test_bad_token_is_403_and_says_what_to_fix():
    resp = bearer("not-a-real-key").get("/api/v3/core/users/")
    assert resp.status_code == 403
    assert "create a new token" in resp.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Token abc"])
def test_malformed_header_is_403(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    resp = client.get("/api/v3/core/users/")
    assert resp.status_code == 403 and "Bearer <token key>" in resp.json()["detail"]


def test_expired_token_is_403(admin_user):
    key = api_token(admin_user, "old", expiring=True, expires=timezone.now() - timedelta(seconds=1))
    assert bearer(key).get("/api/v3/core/users/").status_code == 403


def test_inactive_user_token_is_403(admin_user):
    key = api_token(admin_user, "soon-inactive")
    assert bearer(key).get("/api/v3/core/users/").status_code == 200
    admin_user.is_active = False
    admin_user.save()
    assert bearer(key).get("/api/v3/core/users/").status_code == 403


def test_non_api_intent_is_refused(admin_user):
    token = Token(identifier="app-pw", intent=TokenIntents.INTENT_APP_PASSWORD, user=admin_user)
    key = token.set_key()
    token.save()
    assert bearer(key).get("/api/v3/core/users/").status_code == 403


def test_superuser_token_works(admin):
    assert admin.get("/api/v3/core/users/").status_code == 200


def test_plain_user_gets_403_naming_the_need(alice_api):
    resp = alice_api.get("/api/v3/core/users/")
    assert resp.status_code == 403
    assert "alice" in resp.json()["detail"] and "superuser" in resp.json()["detail"]
    assert alice_api.post("/api/v3/core/groups/", {"name": "x"}, format="json").status_code == 403
    assert alice_api.get("/api/v3/outposts/instances/").status_code == 403


def test_session_auth_falls_through(alice):
    client = APIClient()
    client.force_login(alice)
    resp = client.get("/api/v3/core/users/me/")
    assert resp.status_code == 200 and resp.json()["user"]["username"] == "alice"


def test_root_config_is_public():
    body = APIClient().get("/api/v3/root/config/").json()
    assert body["error_reporting"]["enabled"] is False
    assert body["cache_timeout_flows"] == 300
