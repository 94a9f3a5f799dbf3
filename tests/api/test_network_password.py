"""Network passwords: tokens of intent ``radius`` (Gatehouse's) for RADIUS CHAP / MS-CHAP(v2).

Made through the tokens API by their owner or an admin, the key shown once (view_key refuses it with 403),
kept sealed, never logged, and useless anywhere but the RADIUS core: not a Bearer token, not an app password
on the login flow's password stage.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.accounts.models import Token, TokenIntents
from core.events.models import Event
from tests.flows.conftest import executor, flows, login  # noqa: F401 - fixtures

from .conftest import api_token, bearer

pytestmark = pytest.mark.django_db


def _create(client, identifier: str, **extra) -> dict:
    response = client.post("/api/v3/core/tokens/", {"identifier": identifier, "intent": "radius", **extra},
                           format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_owner_creates_one_and_sees_the_key_once(alice_api, alice, caplog):
    caplog.set_level(logging.DEBUG)
    created = _create(alice_api, "alice-wifi")
    key = created["key"]
    assert created["intent"] == "radius" and len(key) >= 32
    token = Token.objects.get(identifier="alice-wifi")
    assert token.user == alice and token.intent == TokenIntents.INTENT_RADIUS and token.read_key() == key
    # without "expires": the longest a person's token may live (a year by default), not 30 minutes
    assert token.expiring and timezone.now() + timedelta(days=364) < token.expires <= timezone.now() + \
        timedelta(days=365)
    listed = alice_api.get("/api/v3/core/tokens/", {"intent": "radius"}).json()["results"]
    assert [t["identifier"] for t in listed] == ["alice-wifi"] and "key" not in listed[0]
    assert "key" not in alice_api.get("/api/v3/core/tokens/alice-wifi/").json()
    response = alice_api.get("/api/v3/core/tokens/alice-wifi/view_key/")
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "network password" in detail and "shown once" in detail and "create a new one" in detail
    assert key not in response.content.decode()
    assert not Event.objects.filter(action="secret_view").exists()
    assert key not in caplog.text
    assert all(key not in str(e.context) for e in Event.objects.all())


def test_an_admin_creates_one_for_a_user_and_cannot_read_it_either(admin, alice):
    key = _create(admin, "alice-vpn", user=alice.pk)["key"]
    assert Token.objects.get(identifier="alice-vpn").user == alice
    assert admin.get("/api/v3/core/tokens/alice-vpn/view_key/").status_code == 403
    assert key


def test_the_key_is_stored_sealed(alice_api):
    key = _create(alice_api, "alice-sealed")["key"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM authentik_core_token WHERE identifier = %s", ["alice-sealed"])
        row = cursor.fetchone()
    assert row is not None and all(key not in str(value) for value in row)


def test_it_is_not_an_api_token(alice_api):
    key = _create(alice_api, "alice-not-api")["key"]
    assert bearer(key).get("/api/v3/core/users/me/").status_code in (401, 403)
    assert bearer(key).get("/api/v3/core/tokens/").status_code in (401, 403)


def test_it_is_not_an_app_password_on_the_login_flow(flows, alice, executor):  # noqa: F811
    flows.authentication()
    token = Token(identifier="alice-radius", intent=TokenIntents.INTENT_RADIUS, user=alice)
    key = token.set_key()
    token.save()
    answer = login(executor("default-authentication-flow"), "alice", key)
    assert answer["component"] == "ak-stage-password" and answer["response_errors"]["password"]
    app = Token(identifier="alice-app", intent=TokenIntents.INTENT_APP_PASSWORD, user=alice)
    app_key = app.set_key()
    app.save()  # an app password still is one (PAP and the flow are unchanged)
    assert login(executor("default-authentication-flow"), "alice", app_key)["component"] == "xak-flow-redirect"


def test_the_intent_cannot_change_to_or_from_radius(alice_api, alice):
    _create(alice_api, "alice-net")
    response = alice_api.patch("/api/v3/core/tokens/alice-net/", {"intent": "api"}, format="json")
    assert response.status_code == 400 and "network password" in str(response.json()["intent"])
    api_token(alice, "alice-script")
    response = alice_api.patch("/api/v3/core/tokens/alice-script/", {"intent": "radius"}, format="json")
    assert response.status_code == 400
    assert Token.objects.get(identifier="alice-net").intent == "radius"
    assert Token.objects.get(identifier="alice-script").intent == "api"
    ok = alice_api.patch("/api/v3/core/tokens/alice-net/", {"description": "laptop"}, format="json")
    assert ok.status_code == 200 and "key" not in ok.json()
