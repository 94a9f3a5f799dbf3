"""Issue 8 item 11, three parts: Secure cookies over HTTPS, http(s)-only launch URLs, a Content-Security-Policy.

THREATS "Script launch URL": an application whose launch URL is ``JavaScript:...`` (any case, leading
spaces or control characters) is refused when saved (API, admin, blueprint) and never rendered as a link.
THREATS "Cookie over plain HTTP": session and CSRF cookies set over HTTPS carry ``Secure``.
The real stack (:9443 and X-Forwarded-Proto) is tests/server/test_secure_cookies.py; the CSP in a real
browser is tests/browser/test_csp.py.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from core.accounts.launch_url import launch_url_problem
from core.accounts.models import Application, AuthenticatedSession, User
from core.blueprints.importer import Importer
from core.blueprints.loader import load
from core.blueprints.tags import BlueprintError
from core.web.security import BROWSABLE_API_POLICY, HEADER, POLICY
from tests.api.conftest import api_token, bearer
from tests.flows.conftest import FlowFactory

pytestmark = pytest.mark.django_db
PAGE = "/if/flow/default-authentication-flow/"
SCRIPT_URLS = ["javascript:alert(1)", "JavaScript:alert(1)", "JAVASCRIPT:alert(document.cookie)",
               " javascript:alert(1)", "\x01javascript:alert(1)", "\tjavascript:alert(1)", "java\tscript:alert(1)",
               "java\nscript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
               "//evil.example/", "https:javascript:alert(1)", "/relative/path", "app.example.com",
               "https://app.example.com/ x"]
GOOD_URLS = ["https://app.example.com", "HTTPS://App.Example.com/start?x=1#y", "http://10.0.0.5:8080/"]


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw")


def logged_in(user: User, **client_kwargs) -> Client:
    client = Client(**client_kwargs)
    client.force_login(user)
    AuthenticatedSession.objects.get_or_create(session_key=client.session.session_key, defaults={"user": user})
    return client


# --- launch URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_script_launch_urls_are_refused_by_the_api(admin_user, url):
    answer = bearer(api_token(admin_user, "t")).post("/api/v3/core/applications/", {
        "name": "Evil", "slug": "evil", "meta_launch_url": url}, format="json")
    assert answer.status_code == 400, answer.content
    message = " ".join(answer.json()["meta_launch_url"])
    assert "http://" in message and "https://" in message
    assert not Application.objects.filter(slug="evil").exists()


@pytest.mark.parametrize("url", GOOD_URLS + [""])
def test_http_launch_urls_are_accepted(admin_user, url):
    answer = bearer(api_token(admin_user, "t")).post("/api/v3/core/applications/", {
        "name": "Good", "slug": "good", "meta_launch_url": url}, format="json")
    assert answer.status_code == 201, answer.content


@pytest.mark.parametrize("url", ["JavaScript:alert(1)", "\x01javascript:alert(1)"])
def test_script_launch_urls_are_refused_by_blueprints(url):
    text = ("version: 1\nentries:\n- model: authentik_core.application\n  identifiers: {slug: evil}\n"
            f"  attrs: {{name: Evil, meta_launch_url: {json.dumps(url)}}}\n")  # a JSON string is YAML
    with pytest.raises(BlueprintError, match="https://"):
        Importer(load(text, source="test.yaml")).apply()
    assert not Application.objects.filter(slug="evil").exists()


def test_script_launch_urls_are_refused_by_the_admin(admin_user):
    client = logged_in(admin_user)
    answer = client.post("/if/admin/authentik_core/application/add/", {
        "name": "Evil", "slug": "evil", "meta_launch_url": "JavaScript:alert(1)", "policy_engine_mode": "any",
        "group": "", "meta_description": "", "meta_publisher": "", "meta_icon": ""})
    assert answer.status_code == 200 and b"https://" in answer.content
    assert not Application.objects.filter(slug="evil").exists()


def test_stored_script_urls_are_never_rendered(admin_user):
    """Rows saved before the check (or behind its back) are filtered when the portal renders them."""
    for i, url in enumerate(SCRIPT_URLS):
        Application.objects.create(name=f"Evil {i}", slug=f"evil-{i}", meta_launch_url=url)
    Application.objects.create(name="Good", slug="good", meta_launch_url="HTTPS://app.example.com/")
    body = logged_in(admin_user).get("/if/user/").content.decode()
    assert 'data-slug="good"' in body and "evil-" not in body
    assert "script:" not in body.lower()
    listed = bearer(api_token(admin_user, "t")).get("/api/v3/core/applications/").json()["results"]
    assert {a["slug"]: a["launch_url"] for a in listed}["evil-1"] is None


def test_launch_url_problem_names_the_fix():
    assert launch_url_problem("") is None
    for url in GOOD_URLS:
        assert launch_url_problem(url) is None, url
    for url in SCRIPT_URLS:
        assert launch_url_problem(url), url
    assert "control" in launch_url_problem("\x01javascript:x") and "'javascript'" in launch_url_problem("JavaScript:x")


# --- Secure cookies ------------------------------------------------------------------------------


def test_cookies_are_secure_over_https_only():
    FlowFactory().authentication()
    secure = Client().get(PAGE, secure=True)
    assert secure.status_code == 200
    assert {"authentik_session", "authentik_csrf"} <= set(secure.cookies)
    for name in ("authentik_session", "authentik_csrf"):
        assert secure.cookies[name]["secure"] is True, name
        assert secure.cookies[name]["samesite"] == "Lax"
    assert secure.cookies["authentik_session"]["httponly"] is True
    plain = Client().get(PAGE)
    assert plain.status_code == 200
    assert not plain.cookies["authentik_session"]["secure"] and not plain.cookies["authentik_csrf"]["secure"]


def test_login_over_https_sets_a_secure_session():
    from tests.flows.conftest import Executor, login

    FlowFactory().authentication()
    User.objects.create_user("alice", "alice@example.com", "correct horse")
    client = Client()
    ex = Executor(client, "default-authentication-flow", "", **{"wsgi.url_scheme": "https"})
    assert login(ex, "alice", "correct horse")["component"] == "xak-flow-redirect"
    assert client.cookies["authentik_session"]["secure"] is True


# --- Content-Security-Policy --------------------------------------------------------------------


def test_every_kind_of_page_has_the_policy(admin_user):
    FlowFactory().authentication()
    client = logged_in(admin_user)
    pages = {
        "flow page": Client().get(PAGE),
        "portal": client.get("/if/user/"),
        "admin index": client.get("/if/admin/"),
        "admin change list": client.get("/if/admin/authentik_core/user/"),
        "admin form": client.get("/if/admin/authentik_core/application/add/"),
        "flow executor (JSON)": Client().get("/api/v3/flows/executor/default-authentication-flow/?query="),
        "REST API (JSON)": client.get("/api/v3/core/users/", HTTP_ACCEPT="application/json"),
        "not found": client.get("/no-such-page/"),
        "unknown host": Client().get(PAGE, HTTP_HOST="evil.example"),
    }
    for kind, response in pages.items():
        assert response[HEADER] == POLICY, kind
    browsable = client.get("/api/v3/core/users/", HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200 and b"<html" in browsable.content
    assert browsable[HEADER] == BROWSABLE_API_POLICY
    assert "script-src 'self';" in BROWSABLE_API_POLICY and "unsafe-inline" not in BROWSABLE_API_POLICY.split(
        "script-src")[1].split(";")[0]


def test_policy_forbids_inline_script_and_framing():
    directives = dict(d.strip().split(" ", 1) for d in POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "data:" in directives["img-src"]


def test_rendered_pages_have_no_inline_script(admin_user):
    """The policy would block them: every <script> the core renders has a src or is JSON data."""
    import re

    FlowFactory().authentication()
    client = logged_in(admin_user)
    for url in (PAGE, "/if/user/", "/if/admin/", "/if/admin/authentik_core/application/add/"):
        body = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", body):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert not re.search(r"\son[a-z]+=", body), url  # no inline event handlers
        assert "style=" not in body, url
