"""outpost/proxy/headers.py: authentik's header vectors (mode_common_test.go) and THREATS 5."""

import dataclasses

import pytest
from multidict import CIMultiDict

from outpost.proxy import headers as hd
from outpost.proxy.apps import AppConfig

from .conftest import provider_json

CLAIMS = {"preferred_username": "foo", "groups": ["foo", "bar"], "entitlements": ["bar", "quox"],
          "email": "bar@authentik.company", "name": "foo", "sub": "bar"}
VERSION = "0.1.0"


def app(**overrides):
    """authentik's test fixture has no JWKS URI, app slug or outpost name."""
    data = provider_json(assigned_application_slug="", **overrides)
    config = AppConfig.from_json(data, outpost_name="")
    return dataclasses.replace(config, oidc=dataclasses.replace(config.oidc, jwks_uri=""))


def standard(app_config):
    return {
        "X-Authentik-Email": "bar@authentik.company", "X-Authentik-Entitlements": "bar|quox",
        "X-Authentik-Groups": "foo|bar", "X-Authentik-Jwt": "baz", "X-Authentik-Meta-App": "",
        "X-Authentik-Meta-Jwks": "", "X-Authentik-Meta-Outpost": "",
        "X-Authentik-Meta-Provider": app_config.name, "X-Authentik-Meta-Version": "goauthentik.io/outpost/0.1.0",
        "X-Authentik-Name": "foo", "X-Authentik-Uid": "bar", "X-Authentik-Username": "foo",
    }


def test_standard():
    a = app()
    assert dict(hd.identity_headers(a, CLAIMS, "baz", VERSION)) == standard(a)


def test_basic_auth():
    a = app(basic_auth_enabled=True, basic_auth_user_attribute="user", basic_auth_password_attribute="pass")
    claims = {**CLAIMS, "ak_proxy": {"user_attributes": {"user": "foo", "pass": "baz"}}}
    assert dict(hd.identity_headers(a, claims, "baz", VERSION)) == {**standard(a), "Authorization": "Basic Zm9vOmJheg=="}


def test_basic_auth_needs_password_and_ak_proxy():
    a = app(basic_auth_enabled=True, basic_auth_user_attribute="user", basic_auth_password_attribute="pass")
    assert "Authorization" not in dict(hd.identity_headers(a, CLAIMS, "baz", VERSION))
    claims = {**CLAIMS, "ak_proxy": {"user_attributes": {"user": "foo"}}}
    assert "Authorization" not in dict(hd.identity_headers(a, claims, "baz", VERSION))
    claims = {**CLAIMS, "ak_proxy": {"user_attributes": {"pass": "p"}}}  # user falls back to email
    import base64
    assert dict(hd.identity_headers(a, claims, "", VERSION))["Authorization"] == "Basic " + base64.b64encode(
        b"bar@authentik.company:p").decode()
    a = app(basic_auth_enabled=False, basic_auth_user_attribute="user", basic_auth_password_attribute="pass")
    claims = {**CLAIMS, "ak_proxy": {"user_attributes": {"user": "foo", "pass": "baz"}}}
    assert "Authorization" not in dict(hd.identity_headers(a, claims, "baz", VERSION))


def test_additional_headers():
    a = app()
    claims = {**CLAIMS, "ak_proxy": {"user_attributes": {"additionalHeaders": {
        "foo": "bar", "X-Num": 3, "Bad_Name": "x", "X-Authentik-Username": "admin", "x-authentik-uid": "root",
        "Bad Name": "x", "X-Obj": {"a": 1}, "X-Crlf": "a\r\nInjected: 1"}}}}
    got = dict(hd.identity_headers(a, claims, "baz", VERSION))
    assert got == {**standard(a), "foo": "bar", "X-Num": "3", "X-Crlf": ""}


def test_missing_claims_give_empty_values():
    got = dict(hd.identity_headers(app(), {"sub": "s", "groups": "notalist"}, "", VERSION))
    assert got["X-Authentik-Username"] == "" and got["X-Authentik-Groups"] == "" and got["X-Authentik-Uid"] == "s"
    assert set(got) == set(hd.IDENTITY_HEADERS)


def test_underscore_initial():
    """TestAdHeaders_UnderscoreInitial: client-set underscore spellings are removed after setting."""
    a = app()
    h = CIMultiDict({"X_AUTHENTIK_USERNAME": "another user", "X-Authentik_username": "another user"})
    hd.set_headers(h, hd.identity_headers(a, CLAIMS, "baz", VERSION))
    assert dict(h) == standard(a)


def test_set_overwrites_every_case():
    h = CIMultiDict([("x-authentik-username", "evil"), ("X-AUTHENTIK-USERNAME", "evil2"), ("X-Authentik-Extra", "x"),
                     ("Accept", "*/*")])
    hd.set_headers(h, hd.identity_headers(app(), CLAIMS, "baz", VERSION))
    assert h.getall("X-Authentik-Username") == ["foo"]
    assert "X-Authentik-Extra" not in h and h["Accept"] == "*/*"


@pytest.mark.parametrize("name", [
    "X-authentik-username", "x-authentik-username", "X-AUTHENTIK-USERNAME", "X_AUTHENTIK_USERNAME",
    "x_authentik_username", "X-Authentik_Username", "X_Authentik-Uid", "X-Authentik-Meta-Anything", "Some_Header",
])
def test_strip_client_identity_every_spelling(name):
    out = hd.strip_client_headers(CIMultiDict([(name, "admin"), ("Accept", "text/html")]))
    assert list(out.items()) == [("Accept", "text/html")]


def test_connection_cannot_remove_ours():
    client = CIMultiDict([("Connection", "close, X-Authentik-Username, X-Authentik-Groups, Authorization, Foo"),
                          ("Foo", "1"), ("Keep-Alive", "timeout=5"), ("Upgrade", "h2c"), ("TE", "trailers"),
                          ("Authorization", "Bearer client"), ("Cookie", "c=1"), ("Transfer-Encoding", "chunked")])
    out = hd.strip_client_headers(client)
    assert list(out.items()) == [("Cookie", "c=1")]
    hd.set_headers(out, hd.identity_headers(app(), CLAIMS, "baz", VERSION))
    assert out["X-Authentik-Username"] == "foo" and out["X-Authentik-Groups"] == "foo|bar"
    assert "Connection" not in out


def test_client_authorization_kept_when_not_hop_by_hop():
    """authentik #5846: Authorization must survive on the way to the upstream."""
    out = hd.strip_client_headers({"Authorization": "Bearer x"})
    assert out["Authorization"] == "Bearer x"


def test_empty_identity_headers():
    assert dict(hd.empty_identity_headers()) == dict.fromkeys(hd.IDENTITY_HEADERS, "")
