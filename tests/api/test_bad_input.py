"""Malformed input answers 400 with a message that names the problem, never a 500 with a traceback
logged per request (issue 8 item 11): JSON nested thousands of levels deep (the parser's recursion
limit), and NUL characters, which PostgreSQL text cannot hold (psycopg refuses them: a DataError
at the first query that carries one). The same answer on SQLite, so behaviour does not depend on
the database. Run on PostgreSQL too: AUTHENTIK_POSTGRESQL__HOST=... pytest tests/api/test_bad_input.py.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from core.accounts.models import Application
from core.blueprints.apply import BUILTIN_DIR, apply_file

pytestmark = pytest.mark.django_db
DEEP = 3000


def _no_traceback_logged(caplog) -> None:
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]


def _deep_json(depth: int = DEEP) -> str:
    return '{"username": ' + "[" * depth + "]" * depth + "}"


@pytest.fixture
def login_flow(db):
    apply_file(BUILTIN_DIR / "10-flow-default-authentication-flow.yaml")
    return "/api/v3/flows/executor/default-authentication-flow/"


# --- deeply nested JSON --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v3/core/users/", "/api/v3/core/groups/", "/api/v3/core/tokens/"])
def test_deeply_nested_json_at_the_rest_api(admin, path, caplog):
    response = admin.post(path, data=_deep_json(), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested" in response.json()["detail"]
    _no_traceback_logged(caplog)


def test_deeply_nested_json_at_the_flow_executor(login_flow, caplog):
    client = Client()
    client.get(login_flow)
    response = client.post(login_flow, data=_deep_json(), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested" in response.json()["detail"]
    _no_traceback_logged(caplog)


def test_moderately_nested_json_still_works(admin, alice):
    attributes = {"a": {"b": {"c": {"d": [1, [2, [3]]]}}}}
    response = admin.patch(f"/api/v3/core/users/{alice.pk}/", data=json.dumps({"attributes": attributes}),
                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["attributes"] == attributes


# --- NUL characters ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/api/v3/core/users/?username=ad%00min",
    "/api/v3/core/users/?search=%00",
    "/api/v3/core/applications/gra%00fana/",
    "/api/v3/events/events/?username=a%00",
])
def test_nul_in_api_query_or_path(admin, url, caplog):
    Application.objects.create(name="Grafana", slug="grafana")
    response = admin.get(url)
    assert response.status_code == 400, (url, response.status_code, response.content[:300])
    assert "NUL" in response.json()["detail"]
    _no_traceback_logged(caplog)


def test_nul_in_api_json_body(admin, caplog):
    response = admin.post("/api/v3/core/groups/", data=json.dumps({"name": "ops\u0000"}),
                          content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    _no_traceback_logged(caplog)


def test_nul_in_a_username_at_the_flow_executor(login_flow, caplog):
    client = Client()
    client.get(login_flow)
    response = client.post(login_flow, data=json.dumps({"component": "ak-stage-identification",
                                                        "uid_field": "akadmin\u0000"}),
                           content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "NUL" in response.json()["detail"]
    _no_traceback_logged(caplog)


def test_nul_in_a_username_on_the_flow_page(login_flow, caplog):
    client = Client()
    page = "/if/flow/default-authentication-flow/"
    client.get(page)
    response = client.post(page, data="component=ak-stage-identification&uid_field=akadmin%00",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, response.content[:300]
    assert b"NUL" in response.content
    _no_traceback_logged(caplog)


def test_nul_free_input_is_untouched(admin):
    response = admin.get("/api/v3/core/users/?username=admin%25%30%30")  # a literal "%00" typed by someone
    assert response.status_code == 200


# --- the pieces, without HTTP --------------------------------------------------------------------

def test_find_problem_depth_limit_and_nul_keys():
    from core.input_guard import MAX_JSON_DEPTH, find_problem

    def body(depth: int) -> bytes:
        return ("[" * depth + "]" * depth).encode()

    assert find_problem("/api/v3/x/", "", "application/json", body(MAX_JSON_DEPTH)) is None
    assert "nested" in find_problem("/api/v3/x/", "", "application/json", body(MAX_JSON_DEPTH + 1))
    assert "nested" in find_problem("/api/v3/x/", "", "application/json", body(100_000))
    assert "NUL" in find_problem("/x/", "", "application/json", b'{"a\\u0000": 1}')
    assert "NUL" in find_problem("/x/", "", "application/vnd.api+json", b'["\\u0000"]')
    assert find_problem("/x/", "", "application/json", b"not json") is None  # the view explains
    assert "NUL" in find_problem("/x/", "a=1&b%00=2", "", None)
    assert find_problem("/x/", "", "multipart/form-data", b"\x00") is None  # left to upload handlers


def test_executor_refuses_deep_json_even_without_the_guard(login_flow):
    from django.test import RequestFactory

    from core.flows.views import executor_api

    request = RequestFactory().post(login_flow, data=_deep_json(), content_type="application/json")
    response = executor_api(request, "default-authentication-flow")
    assert response.status_code == 400 and b"nested" in response.content


def test_database_refusal_in_the_api_is_a_400():
    from django.db import DataError

    from core.api.errors import exception_handler

    response = exception_handler(DataError("value too long for type character varying(64)"), {})
    assert response.status_code == 400 and "does not fit" in response.data["detail"]
