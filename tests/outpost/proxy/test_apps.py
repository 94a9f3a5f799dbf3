"""outpost/proxy/apps.py: provider JSON -> AppConfig, host lookup."""

import pytest

from outpost.proxy.apps import AppConfig, Apps, ConfigError, UnknownHost, no_app_body

from .conftest import provider_json


def test_from_json(app_config):
    c = app_config
    assert c.host.netloc == "ext.t.goauthentik.io" and c.secure and c.mode == "forward_single"
    assert c.cookie_name == "authentik_proxy_" + __import__("hashlib").sha256(b"test-client").hexdigest()[:8]
    assert c.redirect_uri == "https://ext.t.goauthentik.io/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"
    assert c.oidc.hs256 and c.scopes[0] == "ak_proxy" and c.access is None and c.outpost_name == "test-outpost"


def test_errors_reported_together():
    with pytest.raises(ConfigError) as exc:
        AppConfig.from_json(provider_json(external_host="not a url", mode="weird", client_id="",
                                          oidc_configuration={}, access={"default": "maybe"}))
    text = str(exc.value)
    for word in ("external_host", "mode", "client_id", "oidc_configuration", "access.default"):
        assert word in text


def test_domain_mode_needs_cookie_domain():
    with pytest.raises(ConfigError):
        AppConfig.from_json(provider_json(mode="forward_domain"))
    with pytest.raises(ConfigError):
        AppConfig.from_json(provider_json(mode="forward_domain", cookie_domain="other.io"))
    c = AppConfig.from_json(provider_json(mode="forward_domain", cookie_domain=".T.goauthentik.io"))
    assert c.cookie_domain == "t.goauthentik.io"


def apps():
    return Apps.from_snapshot([
        provider_json(),
        provider_json(pk=2, client_id="b", external_host="https://auth.example.com", mode="forward_domain",
                      cookie_domain="example.com"),
        provider_json(pk=3, client_id="c", external_host="https://auth.deep.example.com", mode="forward_domain",
                      cookie_domain="deep.example.com"),
        provider_json(pk=4, client_id="d", external_host="http://port.example.org:8080"),
        provider_json(pk=5, client_id="", name="broken"),
    ])


def test_lookup():
    a = apps()
    assert a.lookup("EXT.t.goauthentik.io.").pk == 1
    assert a.lookup("ext.t.goauthentik.io:443").pk == 1
    assert a.lookup("app.example.com").pk == 2
    assert a.lookup("x.deep.example.com").pk == 3  # longest cookie domain wins
    assert a.lookup("auth.example.com").pk == 2
    assert a.lookup("port.example.org:8080", "http").pk == 4
    assert a.by_client_id("b").pk == 2
    assert len(a.errors) == 1 and "broken" in a.errors[0]


@pytest.mark.parametrize("host", ["evilexample.com", "port.example.org", "other.io", "", "a/b", "ext.t.goauthentik.io.evil"])
def test_lookup_unknown(host):
    with pytest.raises(UnknownHost) as exc:
        apps().lookup(host)
    assert exc.value.host == host


def test_no_single_app_fallback():
    """authentik serves the only app for any host; we do not (THREATS 2)."""
    with pytest.raises(UnknownHost):
        Apps.from_snapshot([provider_json()]).lookup("other.example")


def test_no_app_body():
    assert no_app_body("h")["Message"] == "no app for hostname"
