"""outpost/app.py: health, readiness from the core link, metrics, the kind's setup."""

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from outpost.app import LINK_KEY, create_app, create_metrics_app
from outpost.config import load
from outpost.proxy import OUTPOST_KEY

from .test_core_link import TOKEN, FakeCore


@pytest.fixture
async def fake():
    core = await FakeCore().start()
    yield core
    await core.stop()


async def serve(app):
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def wait_for(predicate, seconds=5.0):
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_proxy_app_health_ready_and_snapshot(fake, tmp_path):
    config = load({"AUTHENTIK_HOST": fake.url, "AUTHENTIK_TOKEN": TOKEN, "AUTHENTIK_OUTPOST_STATE_DIR": str(tmp_path)})
    app = create_app(config, "proxy")
    server = await serve(app)
    try:
        async with aiohttp.ClientSession() as http:
            for method in ("GET", "HEAD"):
                async with http.request(method, server.make_url("/outpost.goauthentik.io/ping")) as resp:
                    assert resp.status == 204
            async with http.get(server.make_url("/-/health/live/")) as resp:
                assert resp.status == 200
            link = app[LINK_KEY]
            await link.wait_ready(5)
            async with http.get(server.make_url("/-/health/ready/")) as resp:
                body = await resp.json()
                assert resp.status == 200 and body["configured"] and body["generation"] >= 1
            # the proxy outpost got the providers of the snapshot through the link's callbacks
            assert OUTPOST_KEY in app
            metrics = await serve(create_metrics_app(app))
            try:
                await wait_for(lambda: link.connected)
                async with http.get(metrics.make_url("/metrics")) as resp:
                    text = await resp.text()
                    assert resp.status == 200
                    connection = {s.labels["outpost_name"]: s.value for f in text_string_to_metric_families(text)
                                  if f.name == "authentik_outpost_connection" for s in f.samples}
                    assert connection == {"fake": 1.0}
                async with http.get(metrics.make_url("/outpost.goauthentik.io/ping")) as resp:
                    assert resp.status == 204
            finally:
                await metrics.close()
    finally:
        await server.close()


async def test_not_ready_until_configured(tmp_path):
    config = load({"AUTHENTIK_HOST": "http://127.0.0.1:9", "AUTHENTIK_TOKEN": TOKEN,
                   "AUTHENTIK_LISTEN__LDAP": "127.0.0.1:0", "AUTHENTIK_LISTEN__LDAPS": "127.0.0.1:0"})
    server = await serve(create_app(config, "ldap"))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/-/health/ready/")) as resp:
                assert resp.status == 503 and (await resp.json())["configured"] is False
            async with http.get(server.make_url("/outpost.goauthentik.io/ping")) as resp:
                assert resp.status == 204  # alive, even with no core at all
    finally:
        await server.close()


def test_unknown_kind_is_refused():
    config = load({"AUTHENTIK_HOST": "http://127.0.0.1:9", "AUTHENTIK_TOKEN": TOKEN})
    with pytest.raises(ValueError, match="rac"):
        create_app(config, "rac")
