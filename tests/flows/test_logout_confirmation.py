"""The invalidation flow asks before it signs anyone out (issue 8 item 11). Any site can link to or
embed ``/flows/-/default/invalidation/``, ``/if/flow/default-invalidation-flow/`` or the executor API
with the victim's cookies; these tests send exactly that -- a cross-site GET, no CSRF token -- and
check that the session survives, then that the confirmed POST (the flow page's form with Django's
CSRF token, or the executor API's JSON answer) ends it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from core.accounts.models import AuthenticatedSession
from core.events.models import Event

from .conftest import Executor, login

pytestmark = pytest.mark.django_db
EVIL = {"HTTP_ORIGIN": "https://evil.example", "HTTP_REFERER": "https://evil.example/",
        "HTTP_SEC_FETCH_SITE": "cross-site"}
PAGE = "/if/flow/default-invalidation-flow/"


@pytest.fixture
def signed_in(flows, alice):
    """A browser signed in through the login flow, whose POSTs Django checks for the CSRF token."""
    flows.authentication()
    flows.invalidation()
    client = Client(enforce_csrf_checks=True)
    assert login(Executor(client, "default-authentication-flow"), "alice", "correct horse")["component"] \
        == "xak-flow-redirect"
    return client, AuthenticatedSession.objects.get(user=alice)


def _alive(session) -> bool:
    return AuthenticatedSession.objects.filter(pk=session.pk).exists()


def test_cross_site_get_of_the_logout_links_asks(signed_in):
    client, session = signed_in
    hop = client.get("/flows/-/default/invalidation/", **EVIL)
    assert hop.status_code == 302 and hop["Location"] == PAGE
    page = client.get(PAGE, **EVIL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-component="xak-user-logout"' in html and "csrfmiddlewaretoken" in html and "Sign out" in html
    assert _alive(session) and "_auth_user_id" in client.session
    assert not Event.objects.filter(action="logout").exists()


def test_cross_site_get_of_the_executor_api_asks(signed_in):
    client, session = signed_in
    challenge = Executor(client, "default-invalidation-flow", **EVIL).get()
    assert challenge["component"] == "xak-user-logout" and challenge["pending_user"] == "alice"
    assert _alive(session)


def test_confirmed_form_post_signs_out(signed_in):
    client, session = signed_in
    page = client.get(PAGE).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    done = client.post(PAGE, {"csrfmiddlewaretoken": token, "component": "xak-user-logout"})
    assert done.status_code == 302
    assert not _alive(session) and "_auth_user_id" not in client.session
    assert Event.objects.filter(action="logout", user__username="alice").exists()


def test_forged_form_post_without_csrf_token_is_refused(signed_in):
    client, session = signed_in
    client.get(PAGE)
    forged = client.post(PAGE, {"component": "xak-user-logout"}, **EVIL)
    assert forged.status_code == 403
    assert _alive(session)


def test_executor_api_json_answer_signs_out(signed_in):
    client, session = signed_in
    executor = Executor(client, "default-invalidation-flow")
    assert executor.get()["component"] == "xak-user-logout"
    assert executor.post(component="xak-user-logout")["component"] == "xak-flow-redirect"
    assert not _alive(session)


def test_executor_api_refuses_a_form_encoded_answer(signed_in):
    """A cross-site form can send x-www-form-urlencoded without a preflight; the API takes JSON only."""
    client, session = signed_in
    Executor(client, "default-invalidation-flow").get()
    response = client.post("/api/v3/flows/executor/default-invalidation-flow/?query=",
                           "component=xak-user-logout", content_type="application/x-www-form-urlencoded", **EVIL)
    assert response.status_code == 415
    assert _alive(session)


def test_nobody_signed_in_passes_without_a_question(flows):
    flows.invalidation()
    assert Executor(Client(), "default-invalidation-flow").get()["component"] == "xak-flow-redirect"
