"""AUTHENTIK_INSECURE (``OutpostConfig.insecure``): the proxy's HTTP client accepts the core's self-signed
certificate, while each upstream keeps its provider's ``internal_host_ssl_validation`` (the client's default no
longer verifies, so a verifying context is passed explicitly)."""

import ssl

from aiohttp import web

import outpost.proxy as proxy
from outpost.proxy.apps import AppConfig

from .conftest import outpost_config, provider_json


def app_config(validation: bool) -> AppConfig:
    return AppConfig.from_json(provider_json(internal_host_ssl_validation=validation), outpost_name="t")


def test_secure_core_keeps_aiohttp_defaults():
    outpost = proxy.setup(web.Application(), outpost_config())
    assert outpost.upstream_ssl(app_config(True)) is True
    assert outpost.upstream_ssl(app_config(False)) is False


def test_insecure_core_still_verifies_upstreams_that_ask_for_it():
    outpost = proxy.setup(web.Application(), outpost_config(insecure=True))
    verified = outpost.upstream_ssl(app_config(True))
    assert isinstance(verified, ssl.SSLContext)
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
    assert outpost.upstream_ssl(app_config(False)) is False


async def test_insecure_core_client_accepts_any_certificate():
    app = web.Application()
    outpost = proxy.setup(app, outpost_config(insecure=True))
    for resource in app.cleanup_ctx:  # run the outpost's resources context: it makes the HTTP client
        generator = resource(app)
        await generator.__anext__()
        try:
            assert outpost.http is not None and outpost.http.connector._ssl is False
        finally:
            await generator.aclose()
