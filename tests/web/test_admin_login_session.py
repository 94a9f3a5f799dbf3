"""A login made outside any served request (``force_login``) gets its AuthenticatedSession row
(core/accounts/signals.py), so the session survives the first flow; the flow's own login still makes exactly one
row; the admin's log-out removes it. Django's admin login page itself logs nobody in (tests/web/test_login_paths.py)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from core.accounts.models import AuthenticatedSession, Group, User
from core.events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(default_flows) -> User:
    user = User.objects.create_user("root", "root@example.com", "admin-pass-1")
    user.groups.add(Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})[0])
    return user


def test_force_login_records_the_session_and_the_next_flow_keeps_it(root):
    client = Client(REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="test-browser")
    client.force_login(root)
    key = client.session.session_key
    row = AuthenticatedSession.objects.get(session_key=key)
    assert row.user == root and row.expires is not None
    assert Event.objects.filter(action="login", user__username="root").count() == 1
    # The first flow (one that requires a logged-in user) sees the session instead of logging it out.
    body = client.get("/api/v3/flows/executor/default-password-change/?query=").json()
    assert body["component"] != "ak-stage-access-denied", body
    assert client.session.session_key == key and AuthenticatedSession.objects.filter(session_key=key).exists()
    assert client.get("/if/admin/").status_code == 200


def test_failed_admin_login_records_nothing(root):
    client = Client()
    client.post("/if/admin/login/", {"username": "root", "password": "wrong"})
    assert not AuthenticatedSession.objects.exists()


def _flow_login(client: Client) -> None:
    url = "/api/v3/flows/executor/default-authentication-flow/?query="

    def post(**answer):
        response = client.post(url, json.dumps(answer), content_type="application/json")
        return client.get(url).json() if response.status_code == 302 else response.json()

    assert client.get(url).json()["component"] == "ak-stage-identification"
    assert post(component="ak-stage-identification", uid_field="root")["component"] == "ak-stage-password"
    done = post(component="ak-stage-password", password="admin-pass-1")
    assert done["component"] == "xak-flow-redirect", done


def test_flow_login_makes_exactly_one_row(root):
    client = Client(REMOTE_ADDR="192.0.2.8")
    _flow_login(client)
    rows = AuthenticatedSession.objects.filter(user=root)
    assert rows.count() == 1 and rows[0].session_key == client.session.session_key
    assert Event.objects.filter(action="login", user__username="root").count() == 1  # not one per receiver


def test_admin_logout_removes_the_row(root):
    client = Client()
    _flow_login(client)
    key = client.session.session_key
    assert AuthenticatedSession.objects.filter(session_key=key).exists()
    assert client.post("/if/admin/logout/").status_code in (200, 302)
    assert not AuthenticatedSession.objects.filter(session_key=key).exists()
