"""A cross-site GET cannot log anyone out (issue 8 item 11; OpenID Connect RP-Initiated Logout 1.0
§2 and §4: without a valid id_token_hint the OP asks the End-User whether to log out). Any site can
link to or embed ``/application/o/<slug>/end-session/`` and ``/application/o/authorize/?prompt=login``
with the victim's cookies; these tests send exactly that (no Origin or Referer of ours, no CSRF
token) and check the session survives, then that the confirmed POST (a form carrying Django's CSRF
token) or an id_token_hint of the current session does end it, and that post_logout_redirect_uri
is still matched exactly."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.test import Client

from core.accounts.models import AuthenticatedSession
from core.oidc.models import AccessToken
from tests.flows.conftest import Executor
from tests.flows.conftest import login as flow_login
from tests.oidc.conftest import REDIRECT, login
from tests.oidc.helpers import authorize_url, code_from, exchange, get_code

pytestmark = pytest.mark.django_db
EVIL = {"Origin": "https://evil.example", "Referer": "https://evil.example/page", "Sec-Fetch-Site": "cross-site"}


def _csrf_browser(user):
    """A logged-in browser whose POSTs Django checks for the CSRF token (as a real browser's are)."""
    client, session = login(user)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    return strict, session


def _form(page) -> tuple[str, dict[str, str]]:
    html = page.content.decode()
    action = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', html)
    assert action, html[:2000]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return action.group(1).replace("&amp;", "&"), fields


def _end_session(client, **params):
    return client.get(f"/application/o/grafana/end-session/?{urlencode(params)}", headers=EVIL)


def _alive(session) -> bool:
    return AuthenticatedSession.objects.filter(pk=session.pk).exists()


# --- end-session -------------------------------------------------------------------------------

def test_cross_site_get_without_hint_asks_and_keeps_the_session(make_provider, alice):
    provider = make_provider()
    client, session = _csrf_browser(alice)
    page = _end_session(client, post_logout_redirect_uri=REDIRECT, state="s1")
    assert page.status_code == 200, page.content[:300]
    assert b"csrfmiddlewaretoken" in page.content and b"Grafana" in page.content
    assert _alive(session)
    assert code_from(client.get(authorize_url(provider)[0]))  # still signed in


def test_confirmed_post_ends_the_session_and_redirects(make_provider, alice):
    make_provider()
    client, session = _csrf_browser(alice)
    action, fields = _form(_end_session(client, post_logout_redirect_uri=REDIRECT, state="s1"))
    done = client.post(action, fields)
    assert done.status_code == 302 and done["Location"] == f"{REDIRECT}?state=s1"
    assert not _alive(session)


def test_forged_post_without_csrf_token_does_not_end_the_session(make_provider, alice):
    make_provider()
    client, session = _csrf_browser(alice)
    action, fields = _form(_end_session(client))
    fields.pop("csrfmiddlewaretoken")
    forged = client.post(action, fields, headers=EVIL)
    assert forged.status_code == 403
    assert _alive(session)
    # and the RP-facing endpoint itself never ends a session on a bare POST either
    rp_post = client.post("/application/o/grafana/end-session/", {"confirm": "1"}, headers=EVIL)
    assert rp_post.status_code == 200 and _alive(session)


def test_hint_of_the_current_session_logs_out_without_asking(make_provider, browser):
    client, session = browser
    provider = make_provider()
    code, verifier = get_code(client, provider)
    hint = exchange(Client(), provider, code, verifier).json()["id_token"]
    done = _end_session(client, id_token_hint=hint, post_logout_redirect_uri=REDIRECT, state="bye")
    assert done.status_code == 302 and done["Location"] == f"{REDIRECT}?state=bye"
    assert not _alive(session)
    assert not AccessToken.objects.filter(session=session).exists()


def test_hint_of_another_session_asks(make_provider, alice):
    provider = make_provider()
    old_client, _ = login(alice)
    code, verifier = get_code(old_client, provider)
    old_hint = exchange(Client(), provider, code, verifier).json()["id_token"]
    client, session = _csrf_browser(alice)
    page = _end_session(client, id_token_hint=old_hint)
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    assert _alive(session)


@pytest.mark.parametrize("target", ["https://evil.example/", REDIRECT + "/", REDIRECT.upper()])
def test_post_logout_redirect_uri_still_exact_on_both_steps(make_provider, alice, target):
    make_provider()
    client, session = _csrf_browser(alice)
    assert _end_session(client, post_logout_redirect_uri=target).status_code == 400
    action, fields = _form(_end_session(client, post_logout_redirect_uri=REDIRECT))
    tampered = client.post(action, {**fields, "post_logout_redirect_uri": target})
    assert tampered.status_code == 400 and "Location" not in tampered
    assert _alive(session)


def test_not_signed_in_needs_no_confirmation(make_provider):
    make_provider()
    done = Client().get(f"/application/o/grafana/end-session/?{urlencode({'post_logout_redirect_uri': REDIRECT})}")
    assert done.status_code == 302 and done["Location"] == REDIRECT


# --- prompt=login --------------------------------------------------------------------------------

def test_cross_site_prompt_login_does_not_end_the_session(make_provider, browser):
    client, session = browser
    provider = make_provider()
    response = client.get(authorize_url(provider, prompt="login")[0], headers=EVIL)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/if/flow/default-authentication-flow/"
    assert _alive(session)
    assert code_from(client.get(authorize_url(provider)[0]))  # the same session still works


def test_prompt_login_completes_only_after_a_new_login(make_provider, browser, alice):
    client, session = browser
    provider = make_provider()
    url, verifier = authorize_url(provider, prompt="login")
    response = client.get(url)
    login_url = response["Location"]
    nxt = parse_qs(urlsplit(login_url).query)["next"][0]
    # coming back without logging in does not skip the login
    again = client.get(nxt)
    assert urlsplit(again["Location"]).path == "/if/flow/default-authentication-flow/" and _alive(session)
    # a completed login replaces the session; then the authorization goes on, with a fresh auth_time
    done = flow_login(Executor(client, "default-authentication-flow", urlsplit(login_url).query), "alice", "pw")
    assert done["component"] == "xak-flow-redirect", done
    to = done["to"]
    assert not _alive(session)
    new = AuthenticatedSession.objects.get(user=alice)
    code = code_from(client.get(to))
    token = exchange(Client(), provider, code, verifier).json()
    claims = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert claims["sid"] == new.sid and claims["auth_time"] >= int(new.created.timestamp())


@pytest.mark.parametrize("extra", [{"prompt": "login"}, {"max_age": "0"}])
def test_signed_out_user_with_prompt_login_logs_in_once(make_provider, alice, extra):
    provider = make_provider()
    client = Client()
    url, verifier = authorize_url(provider, **extra)
    login_url = client.get(url)["Location"]
    done = flow_login(Executor(client, "default-authentication-flow", urlsplit(login_url).query), "alice", "pw")
    assert done["component"] == "xak-flow-redirect", done
    assert exchange(Client(), provider, code_from(client.get(done["to"])), verifier).status_code == 200
