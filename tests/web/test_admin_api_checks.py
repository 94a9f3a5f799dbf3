"""The admin refuses what the REST API refuses (core/api/admin_checks.py): before, its forms checked only the
model, and saved OAuth2 redirect URIs no redirect could match, unparsable durations, outpost configurations
the outposts could not use and providers an outpost of that type does not serve."""

from __future__ import annotations

import json
import re

import pytest

from core.oidc.models import OAuth2Provider
from core.outposts.models import Outpost
from core.providers.proxy.models import ProxyProvider

pytestmark = pytest.mark.django_db

OAUTH2_ADD = "/if/admin/authentik_providers_oauth2/oauth2provider/add/"
PROXY_ADD = "/if/admin/authentik_providers_proxy/proxyprovider/add/"
OUTPOST_ADD = "/if/admin/authentik_outposts/outpost/add/"


def oauth2_form(**changes) -> dict:
    form = {"name": "grafana", "client_type": "confidential", "client_id": "grafana-id", "client_secret": "s" * 40,
            "redirect_uris": json.dumps([{"matching_mode": "strict", "url": "https://grafana.example.test/cb"}]),
            "include_claims_in_id_token": "on", "access_code_validity": "minutes=1",
            "access_token_validity": "hours=1", "refresh_token_validity": "days=30", "sub_mode": "hashed_user_id",
            "issuer_mode": "per_provider"}
    return form | changes


def errors(response) -> str:
    """The text of the form's error lists."""
    html = response.content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", m) for m in re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S))


def test_oauth2_provider_with_the_apis_checks(admin_client):
    refused = admin_client.post(OAUTH2_ADD, oauth2_form(redirect_uris=json.dumps(["https://grafana.example.test/cb"])))
    assert refused.status_code == 200 and "entry 0: expected an object with a non-empty &#x27;url&#x27;" in errors(refused)
    refused = admin_client.post(OAUTH2_ADD, oauth2_form(access_code_validity="whenever"))
    assert refused.status_code == 200 and "whenever" in errors(refused)
    assert not OAuth2Provider.objects.exists()
    saved = admin_client.post(OAUTH2_ADD, oauth2_form())
    assert saved.status_code == 302, errors(saved)
    assert OAuth2Provider.objects.get().redirect_uris == [{"matching_mode": "strict", "url": "https://grafana.example.test/cb"}]


def test_proxy_provider_needs_the_internal_host_in_proxy_mode(admin_client):
    form = {"name": "app", "mode": "proxy", "external_host": "https://app.example.test", "internal_host": "",
            "client_type": "confidential", "client_id": "app-id", "client_secret": "s" * 40, "redirect_uris": "[]",
            "access_code_validity": "minutes=1", "access_token_validity": "hours=1",
            "refresh_token_validity": "days=30", "sub_mode": "hashed_user_id", "issuer_mode": "per_provider",
            "cookie_secret": "c" * 40, "internal_host_ssl_validation": "on", "intercept_header_auth": "on"}
    refused = admin_client.post(PROXY_ADD, form)
    assert refused.status_code == 200 and "internal_host is required in proxy mode" in errors(refused)
    saved = admin_client.post(PROXY_ADD, form | {"mode": "forward_single"})
    assert saved.status_code == 302, errors(saved)
    assert ProxyProvider.objects.get().mode == "forward_single"


def test_outpost_config_and_provider_types_with_the_apis_checks(admin_client):
    grafana = OAuth2Provider.objects.create(name="grafana")
    form = {"name": "remote", "type": "proxy", "providers": [], "managed": "",
            "config": json.dumps({"authentik_host": "https://auth.example.test/"})}
    refused = admin_client.post(OUTPOST_ADD, form | {"config": json.dumps({"refresh_interval": "soon"})})
    assert refused.status_code == 200 and "refresh_interval" in errors(refused)
    refused = admin_client.post(OUTPOST_ADD, form | {"config": json.dumps({"authentik_host": "ftp://auth"})})
    assert "must be an http(s) URL" in errors(refused)
    refused = admin_client.post(OUTPOST_ADD, form | {"providers": [grafana.pk]})
    assert "a proxy outpost serves only proxyprovider providers" in errors(refused)
    assert not Outpost.objects.filter(name="remote").exists()
    saved = admin_client.post(OUTPOST_ADD, form)
    assert saved.status_code == 302, errors(saved)
    outpost = Outpost.objects.get(name="remote")
    assert outpost.config["authentik_host"] == "https://auth.example.test/"
    assert outpost.config["refresh_interval"] == "minutes=5"  # the API's defaults filled in, as it stores them
