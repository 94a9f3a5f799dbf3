"""The explicit-consent page through the real authorize view: its title names the application (not a raw
``%(app)s``), and "Cancel" ends the authorization at the client with error=access_denied and the state
(RFC 6749 §4.1.2.1), issuing no code."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from core.flows.models import UserConsent
from core.oidc.models import AuthorizationCode

from .conftest import REDIRECT
from .helpers import authorize_url

pytestmark = pytest.mark.django_db
FLOW = "default-provider-authorization-explicit-consent"


def _to_consent(client, provider):
    response = client.get(authorize_url(provider)[0])
    assert response.status_code == 302 and response["Location"].startswith(f"/if/flow/{FLOW}/"), response
    return response["Location"]


def test_consent_title_names_the_application(make_provider, browser):
    client, _ = browser
    provider = make_provider(flow=FLOW)
    page = client.get(_to_consent(client, provider))
    text = page.content.decode()
    assert page.status_code == 200 and "ak-stage-consent" in text
    assert "%(app)s" not in text and "Redirecting to Grafana" in text
    challenge = client.get(f"/api/v3/flows/executor/{FLOW}/?query=").json()
    assert challenge["component"] == "ak-stage-consent"
    assert challenge["flow_info"]["title"] == "Redirecting to Grafana"


def test_consent_cancel_redirects_to_client_with_access_denied(make_provider, browser, alice):
    client, _ = browser
    provider = make_provider(flow=FLOW)
    page = client.get(_to_consent(client, provider))
    assert 'href="/flows/-/cancel/"' in page.content.decode()
    cancelled = client.get("/flows/-/cancel/")
    assert cancelled.status_code == 302
    target = urlsplit(cancelled["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
    query = parse_qs(target.query)
    assert query["error"] == ["access_denied"] and query["state"] == ["st4te"] and "code" not in query
    assert not AuthorizationCode.objects.exists() and not UserConsent.objects.filter(user=alice).exists()
    # The plan is gone: a second cancel (or one outside an authorization) goes home.
    assert client.get("/flows/-/cancel/")["Location"] == "/"
    # The user is still logged in and can authorize again.
    assert client.get(authorize_url(provider)[0])["Location"].startswith(f"/if/flow/{FLOW}/")


def test_cancel_of_a_plain_flow_goes_home(client):
    assert client.get("/flows/-/cancel/")["Location"] == "/"
