"""Malformed client credentials and parameters at the OAuth2 endpoints answer 400 ``invalid_request``
(RFC 6749 §5.2) naming the problem, never a 500 with a traceback (issue 8 item 11): HTTP Basic
credentials that are not UTF-8 (RFC 7617 §2.1: the charset is UTF-8), or that carry NUL or other
control characters once percent-decoded (RFC 6749 §2.3.1), and NUL in form or query parameters,
which PostgreSQL text cannot hold."""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlencode

import pytest
from django.test import Client

from tests.oidc.helpers import authorize_url

pytestmark = pytest.mark.django_db
ENDPOINTS = {
    "token": {"grant_type": "client_credentials"},
    "introspect": {"token": "x"},
    "revoke": {"token": "x"},
    "device": {},
}


def _no_traceback_logged(caplog) -> None:
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]


def _post(endpoint: str, data: dict, authorization: bytes | None = None):
    headers = {"Authorization": "Basic " + base64.b64encode(authorization).decode()} if authorization else {}
    return Client().post(f"/application/o/{endpoint}/", data=urlencode(data),
                         content_type="application/x-www-form-urlencoded", headers=headers)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("credentials", [
    b"\xff\xfe:secret",                       # Latin-1 / binary, not UTF-8
    b"grafana-client:\xe9t\xe9",              # a Latin-1 secret
    b"grafana%00client:secret",               # NUL once percent-decoded (RFC 6749 §2.3.1)
    b"grafana-client\x00:secret",
])
def test_malformed_basic_credentials(make_provider, endpoint, credentials, caplog):
    make_provider()
    response = _post(endpoint, ENDPOINTS[endpoint], credentials)
    assert response.status_code == 400, (endpoint, response.status_code, response.content[:300])
    body = response.json()
    assert body["error"] == "invalid_request" and "Basic" in body["error_description"], body
    _no_traceback_logged(caplog)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_nul_in_client_id_form_parameter(make_provider, endpoint, caplog):
    make_provider()
    response = _post(endpoint, {**ENDPOINTS[endpoint], "client_id": "grafana\x00client", "client_secret": "s"})
    assert response.status_code == 400, (endpoint, response.status_code, response.content[:300])
    assert response.json()["error"] == "invalid_request" and "NUL" in response.json()["error_description"]
    _no_traceback_logged(caplog)


def test_nul_at_authorize(make_provider, browser, caplog):
    client, _ = browser
    provider = make_provider()
    url, _ = authorize_url(provider, client_id=provider.client_id + "\x00")
    response = client.get(url)
    assert response.status_code == 400 and b"NUL" in response.content
    _no_traceback_logged(caplog)


def test_good_basic_credentials_still_work(make_provider):
    provider = make_provider()
    response = _post("token", {"grant_type": "client_credentials"},
                     f"{provider.client_id}:{provider.client_secret}".encode())
    assert response.status_code == 200, response.content
