"""THREATS 12 (revocation): revoking a session ends it everywhere at once, from every place that can
revoke one, and every outpost hears SESSION_END.

The victim is a superuser whose session cookie opened the REST API, the user portal and the admin.
After each way of revoking it (the admin's delete page and its bulk action, the portal, the REST API,
deleting the user through the API and the admin, a queryset delete in code), a copy of the old cookie
-- what an attacker who stole it holds -- opens none of the three, and the outposts were told.
A session whose row vanished without any signal (a raw SQL delete) is refused by the middleware too.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from core.accounts.models import AuthenticatedSession, Group, User
from core.outposts.hub import publisher
from protocols.outpost import Instruction, hash_session_key

from .conftest import api_token, bearer

pytestmark = pytest.mark.django_db

PAGES = ("/api/v3/core/users/me/", "/if/user/", "/if/admin/")


@pytest.fixture
def admins(db) -> Group:
    return Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})[0]


@pytest.fixture
def victim(admins) -> User:
    user = User.objects.create_user("victim", "victim@example.com", "victim-pw")
    user.groups.add(admins)
    return user


@pytest.fixture
def operator(admins) -> User:
    user = User.objects.create_user("operator", "operator@example.com", "operator-pw")
    user.groups.add(admins)
    return user


def logged_in(user: User) -> Client:
    client = Client(REMOTE_ADDR="192.0.2.40")
    client.force_login(user)  # the user_logged_in receiver records the AuthenticatedSession row
    return client


def stolen_copy(client: Client) -> Client:
    thief = Client(REMOTE_ADDR="198.51.100.66")
    thief.cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return thief


def opens(client: Client, path: str) -> bool:
    response = client.get(path)
    if path.startswith("/api/"):
        return response.status_code == 200 and response.json()["user"]["username"] == "victim"
    return response.status_code == 200


@pytest.fixture
def sent(monkeypatch) -> list:
    """Every outpost message this process sends after commit (whatever carries it: Redis or the table)."""
    got: list = []
    monkeypatch.setattr(publisher(), "emit", lambda items: got.extend(items))
    return got


def _admin_delete(operator, victim, row):
    response = logged_in(operator).post(f"/if/admin/authentik_core/authenticatedsession/{row.pk}/delete/",
                                        {"post": "yes"})
    assert response.status_code == 302, response.content[:300]


def _admin_bulk(operator, model: str, pk) -> None:
    """The admin change list's "Delete selected" action, confirmed (a queryset delete)."""
    response = logged_in(operator).post(f"/if/admin/authentik_core/{model}/", {
        "action": "delete_selected", "_selected_action": [str(pk)], "post": "yes"})
    assert response.status_code == 302, response.content[:300]


def _admin_bulk_delete(operator, victim, row):
    _admin_bulk(operator, "authenticatedsession", row.pk)


def _portal(operator, victim, row):
    other_device = logged_in(victim)  # the victim, on another device, revokes the stolen session
    response = other_device.post(f"/if/user/sessions/{row.uuid}/revoke/")
    assert response.status_code == 302 and response["Location"].endswith("#sessions")


def _api(operator, victim, row):
    response = bearer(api_token(operator, "operator-token")).delete(
        f"/api/v3/core/authenticated_sessions/{row.uuid}/")
    assert response.status_code == 204, response.content


def _api_own(operator, victim, row):
    response = bearer(api_token(victim, "victim-token")).delete(f"/api/v3/core/authenticated_sessions/{row.uuid}/")
    assert response.status_code == 204, response.content


def _api_user_delete(operator, victim, row):
    response = bearer(api_token(operator, "operator-token")).delete(f"/api/v3/core/users/{victim.pk}/")
    assert response.status_code == 204, response.content


def _admin_user_bulk_delete(operator, victim, row):
    _admin_bulk(operator, "user", victim.pk)


def _queryset_delete(operator, victim, row):
    assert AuthenticatedSession.objects.filter(user=victim).delete()[0] >= 1


PLACES = {
    "admin-delete-page": _admin_delete,
    "admin-bulk-action": _admin_bulk_delete,
    "portal": _portal,
    "api-by-admin": _api,
    "api-by-owner": _api_own,
    "api-user-delete": _api_user_delete,
    "admin-user-bulk-delete": _admin_user_bulk_delete,
    "queryset-delete": _queryset_delete,
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_revoked_session_is_dead_everywhere_and_outposts_are_told(place, victim, operator, sent,
                                                                  django_capture_on_commit_callbacks):
    browser = logged_in(victim)
    thief = stolen_copy(browser)
    for path in PAGES:
        assert opens(thief, path), path  # the stolen cookie works before the revocation
    row = AuthenticatedSession.objects.get(session_key=browser.session.session_key)
    sid = row.sid

    with django_capture_on_commit_callbacks(execute=True):
        PLACES[place](operator, victim, row)

    assert not AuthenticatedSession.objects.filter(sid=sid).exists()
    assert not Session.objects.filter(session_key=row.session_key).exists()  # the store forgot it, cache too
    for path in PAGES:
        assert not opens(thief, path), f"{path} still opens with a session revoked by {place}"
    ends = [m for _target, m in sent if m.instruction == Instruction.SESSION_END]
    assert [m.args["session_id"] for m in ends if m.args["session_id"] == sid] == [sid]
    assert sid == hash_session_key(row.session_key)
    # and the old cookie made nothing new: no API token was minted with it
    response = thief.post("/api/v3/core/tokens/", {"identifier": "minted-after-revocation"},
                          content_type="application/json")
    assert response.status_code in (401, 403)


def test_a_session_without_its_row_is_refused_even_when_no_signal_fired(victim):
    """A row deleted behind the ORM's back (raw SQL, a restore): the middleware logs the cookie out."""
    browser = logged_in(victim)
    thief = stolen_copy(browser)
    assert opens(thief, "/if/user/")
    AuthenticatedSession.objects.filter(user=victim)._raw_delete("default")  # no signals, store untouched
    assert Session.objects.filter(session_key=browser.session.session_key).exists()
    for path in PAGES:
        assert not opens(thief, path), path
    assert not Session.objects.filter(session_key=browser.session.session_key).exists()  # and it was flushed


def test_revoking_the_current_session_through_the_api_logs_this_browser_out(victim):
    browser = logged_in(victim)
    row = AuthenticatedSession.objects.get(session_key=browser.session.session_key)
    response = browser.delete(f"/api/v3/core/authenticated_sessions/{row.uuid}/",
                              HTTP_X_CSRFTOKEN="unused")  # the test client skips CSRF checks
    assert response.status_code == 204, response.content
    for path in PAGES:
        assert not opens(browser, path), path


def test_other_sessions_of_the_user_survive(victim):
    kept, revoked = logged_in(victim), logged_in(victim)
    AuthenticatedSession.objects.get(session_key=revoked.session.session_key).delete()
    for path in PAGES:
        assert opens(kept, path) and not opens(stolen_copy(revoked), path), path


def test_logging_in_again_over_a_live_session_rotates_it(victim):
    """The flow's login deletes the old row (so its store entry goes) and carries on under a new key."""
    from core.blueprints.apply import BUILTIN_DIR, apply_file

    apply_file(BUILTIN_DIR / "10-flow-default-authentication-flow.yaml")
    browser = logged_in(victim)
    old_key = browser.session.session_key
    url = "/api/v3/flows/executor/default-authentication-flow/?query="
    assert browser.get(url).json()["component"] == "ak-stage-identification"
    for answer in ({"component": "ak-stage-identification", "uid_field": "victim"},
                   {"component": "ak-stage-password", "password": "victim-pw"}):
        response = browser.post(url, answer, content_type="application/json")
        assert response.status_code == 302, response.content
    assert browser.get(url).json()["component"] == "xak-flow-redirect"  # the login stage ran
    new_key = browser.session.session_key
    assert new_key != old_key
    assert list(AuthenticatedSession.objects.filter(user=victim).values_list("session_key", flat=True)) == [new_key]
    assert not Session.objects.filter(session_key=old_key).exists()
    assert opens(browser, "/if/user/")
