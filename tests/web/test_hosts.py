"""Issue 8 item 3 inside Django: the Host check, the Base URL setting, and OIDC discovery on the base URL.

THREATS "Unknown Host": a Host header the core does not know gets a 400 that names the host and the
variable to set, before any view runs (and X-Forwarded-Host is never a way around it). The real-stack
attack (a reset mail for ``Host: attacker.example``) is tests/server/test_public_url.py.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
from django.test import Client

from core.accounts.models import Application, User
from core.hosts import normalize_base_url, parse_host, startup_notes, static_hosts
from core.oidc.models import OAuth2Provider
from core.system import base_url
from core.system.models import SystemSettings

pytestmark = pytest.mark.django_db
PAGE = "/if/flow/default-authentication-flow/"


@pytest.fixture
def configured(settings):
    def configure(**changes):
        settings.CONFIG = dataclasses.replace(settings.CONFIG, **changes)
        return Client()  # a new handler: the middleware reads the configuration when it is built
    return configure


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:9000", "testserver.attacker.example",
                                  "127.0.0.1.attacker.example", "[::2]", "bad host", ""])
def test_unknown_host_gets_a_400_naming_the_fix(client, host, caplog):
    with caplog.at_level(logging.DEBUG):
        response = client.get(PAGE, HTTP_HOST=host)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "AUTHENTIK_WEB__BASE_URL" in text and "AUTHENTIK_WEB__ALLOWED_HOSTS" in text
    assert repr(host) in text or host in text
    assert "DisallowedHost" not in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize("host", ["testserver", "localhost", "localhost:9000", "127.0.0.1", "127.0.0.1:1234",
                                  "[::1]", "[::1]:9000", "LOCALHOST"])
def test_loopback_and_the_test_client_are_known(client, host):
    assert client.get("/", HTTP_HOST=host).status_code == 302


def test_forwarded_host_is_never_read(client):
    assert client.get(PAGE, HTTP_HOST="evil.example", HTTP_X_FORWARDED_HOST="testserver").status_code == 400
    ok = client.get("/", HTTP_HOST="testserver", HTTP_X_FORWARDED_HOST="evil.example")
    assert ok.status_code == 302 and "evil" not in ok["Location"]


def test_configured_names_are_known(configured):
    client = configured(base_url="https://auth.example.com", allowed_hosts=(".internal.example", "10.1.2.3"))
    for host in ("auth.example.com", "auth.example.com:443", "sso.internal.example", "internal.example",
                 "10.1.2.3:9000"):
        assert client.get("/", HTTP_HOST=host).status_code == 302, host
    assert client.get("/", HTTP_HOST="example.com").status_code == 400
    assert configured(allowed_hosts=("*",)).get("/", HTTP_HOST="anything.example").status_code == 302


def test_the_base_url_setting_is_known_at_once_without_a_restart(client):
    assert client.get("/", HTTP_HOST="sso.example.org").status_code == 400
    SystemSettings(base_url="https://sso.example.org/").save()
    assert client.get("/", HTTP_HOST="sso.example.org").status_code == 302
    assert SystemSettings.load().base_url == "https://sso.example.org"  # trailing slash dropped, as authentik


def test_setting_wins_over_the_variable(configured):
    configured(base_url="https://from-env.example")
    assert base_url.current_with_source() == ("https://from-env.example", "AUTHENTIK_WEB__BASE_URL")
    SystemSettings(base_url="https://from-admin.example").save()
    assert base_url.current() == "https://from-admin.example"
    assert base_url.link("/x") == "https://from-admin.example/x"


def test_no_base_url_no_link(configured):
    configured(base_url="")
    with pytest.raises(base_url.NoBaseURL, match="AUTHENTIK_WEB__BASE_URL"):
        base_url.link("/if/flow/x/")


def test_admin_sets_and_validates_the_base_url(client):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    listing = client.get("/if/admin/authentik_admin/systemsettings/")
    assert listing.status_code == 302
    url = listing["Location"]
    page = client.get(url)
    assert page.status_code == 200 and b"Base URL" in page.content and b"no mail with a link" in page.content
    bad = client.post(url, {"base_url": "auth.example.com/path"})
    assert bad.status_code == 200 and b"scheme and host only" in bad.content
    assert client.post(url, {"base_url": "HTTPS://Auth.Example.com/"}).status_code == 302
    assert SystemSettings.load().base_url == "https://auth.example.com"
    assert client.get(url).content.count(b"https://auth.example.com (from the Base URL system setting)") == 1


def _provider() -> OAuth2Provider:
    provider = OAuth2Provider.objects.create(name="p", client_id="c", client_secret="s" * 40, redirect_uris=[])
    Application.objects.create(name="App", slug="app", provider=provider)
    return provider


def test_discovery_uses_the_base_url_for_its_host_and_the_request_otherwise(client):
    _provider()
    SystemSettings(base_url="https://sso.example.org").save()
    url = "/application/o/app/.well-known/openid-configuration"
    public = client.get(url, HTTP_HOST="sso.example.org").json()  # plain http behind a TLS proxy
    assert public["issuer"] == "https://sso.example.org/application/o/app/"
    assert public["token_endpoint"] == "https://sso.example.org/application/o/token/"
    internal = client.get(url).json()  # an outpost or a service on the back channel
    assert internal["issuer"] == "http://testserver/application/o/app/"
    other_port = client.get(url, HTTP_HOST="sso.example.org:9000").json()
    assert other_port["issuer"] == "http://sso.example.org:9000/application/o/app/"


# --- the pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("https://auth.example.com", "https://auth.example.com"), ("HTTPS://Auth.Example.COM/", "https://auth.example.com"),
    ("http://10.0.0.5:9000", "http://10.0.0.5:9000"), ("https://[2001:db8::1]", "https://[2001:db8::1]"), ("", "")])
def test_normalize_base_url(raw, expected):
    assert normalize_base_url(raw) == expected


@pytest.mark.parametrize("raw", ["auth.example.com", "ftp://auth.example.com", "https://auth.example.com/auth",
                                 "https://u:p@auth.example.com", "https://auth.example.com?x=1", "https://",
                                 "https://auth.example.com:99999", "javascript:alert(1)", "https://a b.com"])
def test_bad_base_urls_are_refused(raw):
    with pytest.raises(ValueError, match="scheme and host only"):
        normalize_base_url(raw)


def test_host_patterns():
    assert parse_host(" Auth.Example.com ") == "auth.example.com"
    assert parse_host("::1") == "[::1]" and parse_host(".example.com") == ".example.com" and parse_host("*") == "*"
    for bad in ("auth.example.com:443", "a b", "https://x", "x/y", "*.example.com"):
        with pytest.raises(ValueError, match="not a host name"):
            parse_host(bad)
    assert static_hosts("https://auth.example.com", ("0.0.0.0", "192.168.1.5"), ("sso",)) == (
        "auth.example.com", "192.168.1.5", "localhost", "127.0.0.1", "[::1]", "sso")


def test_startup_notes_say_what_is_missing():
    static = static_hosts("", ("0.0.0.0",), ())
    notes = dict((text, level) for level, text in startup_notes(static, "", ""))
    assert any("AUTHENTIK_WEB__BASE_URL" in text and level == "warning" for text, level in notes.items())
    wildcard = startup_notes(static_hosts("", (), ("*",)), "", "https://a.example")
    assert any(level == "warning" and "contains *" in text for level, text in wildcard)
    differ = startup_notes(static, "https://admin.example", "https://env.example")
    assert any(level == "warning" and "differs" in text and "admin.example" in text for level, text in differ)
    assert "admin.example" in startup_notes(static, "https://admin.example", "")[0][1]
