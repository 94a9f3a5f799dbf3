"""Provider JSON as /api/v3/outposts/proxy/ returns it (authentik's fixture: reference §7)."""

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import outpost.proxy as proxy
from outpost.config import OutpostConfig
from outpost.proxy.apps import AppConfig
from outpost.proxy.reverse import add_catch_all

EXT = "https://ext.t.goauthentik.io"


def outpost_config(**fields) -> OutpostConfig:
    """A standalone outpost's configuration as ``outpost.config.load`` makes it (defaults: the private ranges and
    loopback are trusted proxies); ``fields`` override."""
    return OutpostConfig(**{"authentik_host": "http://core.invalid/", "token": "test-outpost-token", **fields})


def provider_json(**overrides):
    data = {
        "pk": 1, "name": "test-provider", "internal_host": "http://backend:8080", "external_host": EXT,
        "internal_host_ssl_validation": True, "client_id": "test-client", "client_secret": "test-secret",
        "oidc_configuration": {
            "issuer": "http://fake-auth.t.goauthentik.io/application/o/app/",
            "authorization_endpoint": "http://fake-auth.t.goauthentik.io/auth",
            "token_endpoint": "http://fake-auth.t.goauthentik.io/token",
            "jwks_uri": "http://fake-auth.t.goauthentik.io/jwks",
            "end_session_endpoint": "http://fake-auth.t.goauthentik.io/end-session",
            "introspection_endpoint": "http://fake-auth.t.goauthentik.io/introspect",
            "id_token_signing_alg_values_supported": ["HS256"],
        },
        "cookie_secret": "C" * 32, "certificate": None, "skip_path_regex": "/skip.*",
        "basic_auth_enabled": False, "basic_auth_password_attribute": "password",
        "basic_auth_user_attribute": "username", "mode": "forward_single", "cookie_domain": "",
        "access_token_validity": 300.0, "intercept_header_auth": True,
        "scopes_to_request": ["ak_proxy", "email", "entitlements", "openid", "profile"],
        "assigned_application_slug": "app", "assigned_application_name": "App",
    }
    data.update(overrides)
    return data


@pytest.fixture
def app_config():
    return AppConfig.from_json(provider_json(), outpost_name="test-outpost")


async def start_echo(seen: list | None = None) -> TestServer:
    """An upstream that answers JSON of the raw path and headers it received (appending the raw path to
    ``seen``); close it when done."""
    async def echo(request):
        if seen is not None:
            seen.append(request.raw_path)
        return web.json_response({"raw_path": request.raw_path, "path": request.path_qs,
                                  "headers": dict(request.headers)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def start_outpost(**setup) -> tuple[TestClient, proxy.ProxyOutpost]:
    """The proxy outpost (forward auth and proxy mode) behind an aiohttp test client; close the client."""
    app = web.Application()
    outpost = proxy.setup(app, outpost_config(), **setup)
    add_catch_all(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client, outpost
