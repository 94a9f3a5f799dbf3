"""Login through the executor API: the full round trip, errors, no enumeration, sessions, events."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.test import Client

from core.accounts.models import AuthenticatedSession, Token, TokenIntents, User
from core.events.models import Event
from core.flows.planner import safe_next
from tests.flows.conftest import login

pytestmark = pytest.mark.django_db


def test_full_login_reaches_flow_redirect(flows, alice, executor):
    flows.authentication()
    ex = executor("default-authentication-flow", "next=%2Fapplication%2Fo%2Fauthorize%2F%3Fclient_id%3Dx")
    first = ex.get()
    assert first["component"] == "ak-stage-identification"
    assert first["user_fields"] == ["username", "email"]
    assert first["password_fields"] is False
    assert set(first["flow_info"]) >= {"title", "background", "cancel_url", "layout"}
    assert first["response_errors"] == {}
    raw = ex.post_raw(component="ak-stage-identification", uid_field="alice")
    assert raw.status_code == 302 and raw["Location"] == ex.url
    password = ex.get()
    assert password["component"] == "ak-stage-password"
    assert password["pending_user"] == "alice"
    assert password["pending_user_avatar"]
    done = ex.post(component="ak-stage-password", password="correct horse")
    assert done["component"] == "xak-flow-redirect"
    assert done["to"] == "/application/o/authorize/?client_id=x"
    session = AuthenticatedSession.objects.get(user=alice)
    assert session.session_key == ex.client.cookies[settings.SESSION_COOKIE_NAME].value
    assert session.expires is not None
    assert Event.objects.filter(action="login", user__username="alice").exists()
    # a login writes sessions and stamps, none of them audited changes (core/events/audit.py)
    assert not Event.objects.filter(action__startswith="model_").exists(), list(Event.objects.values("action", "context"))


def test_password_sent_with_identification(flows, alice, executor):
    flows.authentication(password_in_identification=True)
    ex = executor("default-authentication-flow")
    assert ex.get()["password_fields"] is True
    bad = ex.post(component="ak-stage-identification", uid_field="alice", password="nope")
    assert bad["component"] == "ak-stage-identification" and bad["response_errors"]
    done = ex.post(component="ak-stage-identification", uid_field="ALICE", password="correct horse")
    assert done["component"] == "xak-flow-redirect" and done["to"] == "/"


def test_wrong_password_same_challenge_with_errors(flows, alice, executor):
    flows.authentication()
    ex = executor("default-authentication-flow")
    answer = login(ex, "alice", "wrong")
    assert answer["component"] == "ak-stage-password"
    assert answer["response_errors"] == {"password": [{"string": "Invalid password", "code": "invalid"}]}
    failed = Event.objects.get(action="login_failed")
    assert failed.context["username"] == "alice"
    assert "wrong" not in json.dumps(failed.context)
    assert not AuthenticatedSession.objects.exists()


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k != "pending_user"}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_unknown_user_same_shape_no_enumeration(flows, alice, executor):
    flows.authentication()
    known = login(executor("default-authentication-flow"), "alice@example.com", "wrong")
    unknown = login(executor("default-authentication-flow"), "mallory@example.com", "wrong")
    assert known == {**unknown, "pending_user": known["pending_user"]}
    assert _shape(known) == _shape(unknown)
    # the name shown is the one typed, never the account's username
    assert known["pending_user"] == "alice@example.com"
    assert unknown["pending_user"] == "mallory@example.com"


def test_failed_attempts_before_cancel(flows, alice, executor):
    flows.authentication()
    ex = executor("default-authentication-flow")
    answer = login(ex, "alice", "w0")
    for i in range(1, 5):
        answer = ex.post(component="ak-stage-password", password=f"w{i}")
    assert answer["component"] == "ak-stage-access-denied"
    # the plan is gone: the next GET starts again
    assert ex.get()["component"] == "ak-stage-identification"


def test_wrong_component_is_refused(flows, alice, executor):
    flows.authentication()
    ex = executor("default-authentication-flow")
    ex.get()
    answer = ex.post(component="ak-stage-password", password="correct horse")
    assert answer["component"] == "ak-stage-identification" and "component" in answer["response_errors"]


def test_executor_post_must_be_json(flows, alice):
    flows.authentication()
    client = Client()
    response = client.post("/api/v3/flows/executor/default-authentication-flow/?query=",
                           {"component": "ak-stage-identification", "uid_field": "alice"})
    assert response.status_code == 415


def test_unknown_flow_404(db):
    assert Client().get("/api/v3/flows/executor/nope/?query=").status_code == 404


def test_session_key_rotates_at_login(flows, alice, executor):
    flows.authentication()
    ex = executor("default-authentication-flow")
    login_key_before = None
    ex.get()
    ex.post(component="ak-stage-identification", uid_field="alice")
    login_key_before = ex.client.cookies[settings.SESSION_COOKIE_NAME].value
    assert ex.post(component="ak-stage-password", password="correct horse")["component"] == "xak-flow-redirect"
    after = ex.client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != login_key_before
    assert AuthenticatedSession.objects.get(user=alice).session_key == after
    # the pre-login key is no longer a session at all
    from importlib import import_module
    store = import_module(settings.SESSION_ENGINE).SessionStore
    assert not store().exists(login_key_before)


def test_logout_deletes_authenticated_session(flows, alice, executor):
    flows.authentication()
    flows.invalidation()
    client = Client()
    login(executor("default-authentication-flow", client=client), "alice", "correct horse")
    assert AuthenticatedSession.objects.filter(user=alice).count() == 1
    logout = executor("default-invalidation-flow", client=client)
    assert logout.get()["component"] == "xak-user-logout"  # asks first (tests/flows/test_logout_confirmation.py)
    done = logout.post(component="xak-user-logout")
    assert done["component"] == "xak-flow-redirect"
    assert not AuthenticatedSession.objects.filter(user=alice).exists()
    assert Event.objects.filter(action="logout", user__username="alice").exists()
    assert "_auth_user_id" not in client.session


def test_revoked_session_is_logged_out(flows, alice, executor):
    flows.authentication()
    client = Client()
    login(executor("default-authentication-flow", client=client), "alice", "correct horse")
    AuthenticatedSession.objects.filter(user=alice).delete()
    # an authentication flow for a logged-in user would finish at once; a revoked one starts over
    assert executor("default-authentication-flow", client=client).get()["component"] == "ak-stage-identification"


def test_old_hash_is_upgraded_to_argon2(flows, alice, executor):
    User.objects.filter(pk=alice.pk).update(password=make_password("correct horse", hasher="pbkdf2_sha256"))
    flows.authentication()
    assert login(executor("default-authentication-flow"), "alice", "correct horse")["component"] == \
        "xak-flow-redirect"
    alice.refresh_from_db()
    assert alice.password.startswith("argon2")


def test_app_password_through_token_backend(flows, alice, executor):
    flows.authentication()
    token = Token(identifier="alice-app", intent=TokenIntents.INTENT_APP_PASSWORD, user=alice)
    key = token.set_key()
    token.save()
    assert login(executor("default-authentication-flow"), "alice", key)["component"] == "xak-flow-redirect"


def test_inactive_user_fails_like_unknown(flows, alice, executor):
    User.objects.filter(pk=alice.pk).update(is_active=False)
    flows.authentication()
    answer = login(executor("default-authentication-flow"), "alice", "correct horse")
    assert answer["response_errors"]["password"][0]["string"] == "Invalid password"


@pytest.mark.parametrize("value,expected", [
    ("/app/", "/app/"), ("/a?b=c", "/a?b=c"), ("//evil.com", None), ("/\\evil.com", None),
    ("https://evil.com/", None), ("javascript:alert(1)", None), ("/a b", None), ("/a\tb", None),
    ("http://testserver/x?y", "/x?y"), ("http://user@testserver/x", None), ("relative", None),
])
def test_safe_next(value, expected):
    assert safe_next(value, "testserver") == expected


def test_open_redirect_next_is_dropped(flows, alice, executor):
    flows.authentication()
    done = login(executor("default-authentication-flow", "next=https%3A%2F%2Fevil.example%2F"), "alice",
                 "correct horse")
    assert done == {**done, "component": "xak-flow-redirect", "to": "/"}
