"""Issue 12 item 2: Applications -> Create with wizard: an application and its provider (each kind) through the
API's serializers, an optional group binding, the outpost assignment, and what to copy shown once."""

from __future__ import annotations

import html

import pytest

from core.accounts.admin_wizard import OIDC_SCOPES
from core.accounts.models import Application, Group
from core.oidc.models import OAuth2Provider, ScopeMapping
from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost
from core.policies.models import PolicyBinding
from core.providers.proxy.models import ProxyProvider
from core.providers.radius.models import RadiusProvider

pytestmark = pytest.mark.django_db
URL = "/if/admin/wizard/application/"



@pytest.fixture
def embedded(default_flows):
    return Outpost.objects.get_or_create(managed=EMBEDDED_OUTPOST_MANAGED,
                                         defaults={"name": "authentik Embedded Outpost", "type": "proxy"})[0]


def test_the_wizard_is_linked_and_preselects_the_embedded_outpost(admin_client, embedded):
    assert "Create with wizard" in admin_client.get("/if/admin/authentik_core/application/").content.decode()
    page = admin_client.get(URL).content.decode()
    assert f'<option value="{embedded.pk}" selected>' in page


def test_forward_auth_application_with_group_and_outpost(admin_client, embedded):
    staff = Group.objects.create(name="staff")
    response = admin_client.post(URL, {"name": "Who Am I", "slug": "whoami", "kind": "forward_single",
                                       "external_host": "https://whoami.example.com", "group": staff.pk,
                                       "outpost": embedded.pk})
    body = html.unescape(response.content.decode())
    assert response.status_code == 200 and 'id="created"' in body, body[-2000:]
    app = Application.objects.get(slug="whoami")
    provider = ProxyProvider.objects.get(pk=app.provider_id)
    assert provider.mode == "forward_single" and provider.external_host == "https://whoami.example.com"
    assert PolicyBinding.objects.filter(target=app, group=staff).exists()
    assert embedded.providers.filter(pk=provider.pk).exists()
    assert "traefik.http.routers.whoami.rule=Host(`whoami.example.com`)" in body
    assert "/outpost.goauthentik.io/auth/caddy" in body and "auth_request /outpost.goauthentik.io/auth/nginx" in body


def test_oauth2_shows_client_id_secret_and_discovery(admin_client):
    response = admin_client.post(URL, {"name": "Grafana", "slug": "grafana", "kind": "oauth2",
                                       "redirect_uris": "https://grafana.example.com/login/generic_oauth"})
    body = html.unescape(response.content.decode())
    provider = OAuth2Provider.objects.get(pk=Application.objects.get(slug="grafana").provider_id)
    assert provider.client_id in body and provider.client_secret in body
    assert "/application/o/grafana/.well-known/openid-configuration" in body
    assert "no-store" in response["Cache-Control"]
    expected = set(ScopeMapping.objects.filter(managed__in=OIDC_SCOPES).values_list("pk", flat=True))
    assert set(provider.property_mappings.values_list("pk", flat=True)) == expected


def test_ldap_and_radius(admin_client, embedded):
    body = admin_client.post(URL, {"name": "Directory", "slug": "directory", "kind": "ldap",
                                   "base_dn": "DC=ldap,DC=example,DC=com", "outpost": embedded.pk}).content.decode()
    assert "dc=ldap,dc=example,dc=com" in body and "ldapsearch" in body
    body = html.unescape(admin_client.post(URL, {"name": "VPN", "slug": "vpn", "kind": "radius",
                                                 "client_networks": "10.0.0.0/8"}).content.decode())
    secret = RadiusProvider.objects.get(pk=Application.objects.get(slug="vpn").provider_id).shared_secret
    assert secret and secret in body and "radtest" in body


def test_bad_answers_are_errors_on_the_form_and_create_nothing(admin_client):
    response = admin_client.post(URL, {"name": "Bad", "slug": "bad", "kind": "radius", "client_networks": "nope"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not Application.objects.filter(slug="bad").exists()


def test_forward_auth_snippets_use_the_address_people_reach_the_core_at(admin_client, embedded):
    """Not authentik's own container name (http://authentik-server:9000): without a base URL, the address this
    page was reached at, and the page says so; with one, the base URL."""
    from django.core.cache import cache

    from core.system.models import SINGLETON_PK, SystemSettings

    form = {"kind": "forward_single", "outpost": embedded.pk}
    body = html.unescape(admin_client.post(URL, form | {"name": "One", "slug": "one",
                                                        "external_host": "https://one.example.com"}).content.decode())
    assert "authentik-server" not in body
    assert "forwardauth.address=http://testserver/outpost.goauthentik.io/auth/traefik" in body
    assert "forward_auth http://testserver {" in body
    assert "proxy_pass http://testserver/outpost.goauthentik.io;" in body
    assert "the address this page was reached at" in body

    SystemSettings.objects.update_or_create(pk=SINGLETON_PK, defaults={"base_url": "https://auth.example.com"})
    cache.clear()
    body = html.unescape(admin_client.post(URL, form | {"name": "Two", "slug": "two",
                                                        "external_host": "https://two.example.com"}).content.decode())
    assert "forwardauth.address=https://auth.example.com/outpost.goauthentik.io/auth/traefik" in body
    assert "from the Base URL system setting" in body and "testserver" not in body


def test_oauth2_from_the_wizard_signs_with_the_default_certificate(admin_client):
    admin_client.post(URL, {"name": "Grafana", "slug": "grafana", "kind": "oauth2",
                            "redirect_uris": "https://grafana.example.com/login/generic_oauth\nregex:https://.*\\.example\\.com/cb"})
    provider = OAuth2Provider.objects.get(pk=Application.objects.get(slug="grafana").provider_id)
    assert provider.signing_key.name == "authentik Self-signed Certificate"
    assert [u["matching_mode"] for u in provider.redirect_uris] == ["strict", "regex"]
