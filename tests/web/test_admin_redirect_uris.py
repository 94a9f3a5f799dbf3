"""Seeds 001/002 in the admin's OAuth2 provider form: "Redirect URIs: https://grafana.example.com/login/
generic_oauth" typed as the seed has it (one URI per line, strict; ``regex:`` for a pattern; the API's JSON still
read), errors naming the line; "Signing Key: pick the default certificate" on a fresh install."""

from __future__ import annotations

import html
import json

import pytest

from core.crypto.models import CertificateKeyPair
from core.oidc.keys import NAMES, default_signing_key
from core.oidc.models import OAuth2Provider
from tests.web.test_admin_api_checks import OAUTH2_ADD, errors, oauth2_form

pytestmark = pytest.mark.django_db
GRAFANA = "https://grafana.example.com/login/generic_oauth"
DEFAULT_CERTIFICATE = "authentik Self-signed Certificate"


def test_one_uri_per_line_is_strict_and_regex_lines_are_patterns(admin_client):
    text = f"{GRAFANA}\n\n  regex:https://.*\\.example\\.com/cb  \nhttp://localhost:3000/callback\n"
    saved = admin_client.post(OAUTH2_ADD, oauth2_form(redirect_uris=text))
    assert saved.status_code == 302, errors(saved)
    provider = OAuth2Provider.objects.get()
    assert provider.redirect_uris == [{"matching_mode": "strict", "url": GRAFANA},
                                      {"matching_mode": "regex", "url": r"https://.*\.example\.com/cb"},
                                      {"matching_mode": "strict", "url": "http://localhost:3000/callback"}]
    page = html.unescape(admin_client.get(f"/if/admin/authentik_providers_oauth2/oauth2provider/{provider.pk}/change/")
                         .content.decode())
    shown = f"{GRAFANA}\nregex:https://.*\\.example\\.com/cb\nhttp://localhost:3000/callback</textarea>"
    assert shown in page, page[page.find('name="redirect_uris"') - 200:][:600]
    assert "regex:" in page and "one redirect uri per line" in page.lower()  # the convention, in the help text


def test_the_apis_json_form_is_still_read(admin_client):
    value = json.dumps([{"matching_mode": "regex", "url": "https://(a|b)\\.example\\.com/cb"}])
    saved = admin_client.post(OAUTH2_ADD, oauth2_form(redirect_uris=value))
    assert saved.status_code == 302, errors(saved)
    assert OAuth2Provider.objects.get().redirect_uris == [{"matching_mode": "regex",
                                                          "url": "https://(a|b)\\.example\\.com/cb"}]


@pytest.mark.parametrize(("text", "message"), [
    (f"{GRAFANA}\nregex:https://(unclosed", "line 2: regex &#x27;https://(unclosed&#x27; does not compile"),
    (f"{GRAFANA}\ngrafana.example.com/login", "line 2: &#x27;grafana.example.com/login&#x27; is not a URI"),
    (f"{GRAFANA} https://other.example.com/cb", "line 1: "),
    ("[not json", "starts with [ but is not JSON"),
    (json.dumps([{"url": "https://(x"}]).replace('"url"', '"matching_mode": "regex", "url"'), "does not compile"),
])
def test_a_bad_line_is_named_and_nothing_is_saved(admin_client, text, message):
    refused = admin_client.post(OAUTH2_ADD, oauth2_form(redirect_uris=text))
    assert refused.status_code == 200 and message in errors(refused), errors(refused)
    assert not OAuth2Provider.objects.exists()
    assert text in html.unescape(refused.content.decode())  # what was typed is shown again, to be corrected


def test_fresh_install_lists_the_default_certificate_preselected(admin_client):
    assert not CertificateKeyPair.objects.exists()  # a fresh install: no keypair yet
    page = admin_client.get(OAUTH2_ADD).content.decode()
    pair = CertificateKeyPair.objects.get()
    assert pair.name == DEFAULT_CERTIFICATE == NAMES["rsa"] and pair.key_data and pair.certificate_data
    assert f'<option value="{pair.pk}" selected>{DEFAULT_CERTIFICATE}</option>' in page
    admin_client.get(OAUTH2_ADD)
    assert CertificateKeyPair.objects.count() == 1  # made once, then found
    saved = admin_client.post(OAUTH2_ADD, oauth2_form(redirect_uris=GRAFANA, signing_key=str(pair.pk)))
    assert saved.status_code == 302, errors(saved)
    assert OAuth2Provider.objects.get().signing_key == pair
    # an existing provider's page lists it too, and keeps "no key" when the provider has none
    other = OAuth2Provider.objects.create(name="hs256", client_id="hs", client_secret="s" * 40)
    page = admin_client.get(f"/if/admin/authentik_providers_oauth2/oauth2provider/{other.pk}/change/").content.decode()
    assert f'<option value="{pair.pk}">{DEFAULT_CERTIFICATE}</option>' in page


def test_a_certificate_of_that_name_brought_from_authentik_is_the_default():
    brought = default_signing_key("ec")  # any real keypair, renamed as authentik's default and not managed
    CertificateKeyPair.objects.filter(pk=brought.pk).update(name=DEFAULT_CERTIFICATE, managed=None)
    assert default_signing_key("rsa").pk == brought.pk
    assert CertificateKeyPair.objects.count() == 1


def test_two_replicas_making_it_at_once_share_one(monkeypatch):
    """The second creator's insert fails on the unique name; it uses the first one's row."""
    from core.oidc import keys

    first = keys.default_signing_key("rsa")
    calls = []

    def not_seen_yet(kind):  # the other replica's row is not visible at the first look
        calls.append(kind)
        return None if len(calls) == 1 else first

    monkeypatch.setattr(keys, "_existing", not_seen_yet)
    assert keys.default_signing_key("rsa").pk == first.pk
    assert CertificateKeyPair.objects.count() == 1
