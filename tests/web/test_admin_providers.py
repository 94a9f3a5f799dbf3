"""Applications -> Providers in the admin: "Add" asks for the kind (authentik: Create -> OAuth2/OpenID Provider),
never makes a provider of no kind, and a row opens its kind's page."""

from __future__ import annotations

import pytest

from core.accounts.models import Provider
from core.oidc.models import OAuth2Provider

pytestmark = pytest.mark.django_db

PROVIDERS = "/if/admin/authentik_core/provider/"


def test_add_asks_for_the_kind_and_creates_nothing(admin_client):
    page = admin_client.get(PROVIDERS + "add/").content.decode()
    for name, url in (("OAuth2/OpenID Provider", "/if/admin/authentik_providers_oauth2/oauth2provider/add/"),
                      ("Proxy Provider", "/if/admin/authentik_providers_proxy/proxyprovider/add/"),
                      ("LDAP Provider", "/if/admin/authentik_providers_ldap/ldapprovider/add/"),
                      ("RADIUS Provider", "/if/admin/authentik_providers_radius/radiusprovider/add/")):
        assert f'<a href="{url}">{name}</a>' in page
    admin_client.post(PROVIDERS + "add/", {"name": "no kind"})
    assert not Provider.objects.exists()


def test_a_row_shows_its_kind_and_opens_its_kinds_page(admin_client):
    grafana = OAuth2Provider.objects.create(name="grafana")
    listing = admin_client.get(PROVIDERS).content.decode()
    assert "grafana" in listing and "OAuth2/OpenID Provider" in listing
    opened = admin_client.get(f"{PROVIDERS}{grafana.pk}/change/")
    assert opened.status_code == 302
    assert opened["Location"] == f"/if/admin/authentik_providers_oauth2/oauth2provider/{grafana.pk}/change/"


def test_radius_provider_bind_mode_in_the_admin_form(admin_client):
    """bind_mode (direct / cached, outpost/bind_cache.py) is a choice on the RADIUS provider's page, checked as
    the API checks it."""
    from core.providers.radius.models import RadiusProvider

    url = "/if/admin/authentik_providers_radius/radiusprovider/"
    page = admin_client.get(url + "add/").content.decode()
    assert '<select name="bind_mode"' in page and 'value="direct" selected' in page and 'value="cached"' in page
    provider = RadiusProvider.objects.create(name="vpn", shared_secret="a-shared-secret")
    form = {"name": "vpn", "client_networks": "10.0.0.0/8", "shared_secret": "a-shared-secret",
            "mfa_support": "on", "require_message_authenticator": "on", "bind_mode": "cached"}
    response = admin_client.post(f"{url}{provider.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    provider.refresh_from_db()
    assert provider.bind_mode == "cached"
    response = admin_client.post(f"{url}{provider.pk}/change/", {**form, "bind_mode": "sometimes"})
    assert response.status_code == 200 and "sometimes" in response.content.decode()
    provider.refresh_from_db()
    assert provider.bind_mode == "cached"
