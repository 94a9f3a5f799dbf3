"""A proxy provider made by a blueprint the way authentik users write them (mode, external_host, flows, no
``property_mappings``), applied with ``ak apply_blueprint`` against the running ``ak server``: after a login
through the REAL Traefik, Caddy and nginx (configs/ unchanged), the upstream receives the user's identity
headers, not ``X-authentik-username: ''`` (issue 8 item 2; THREATS 1: never a 2xx without identity).

The unit-level halves: tests/blueprints/test_proxy_defaults.py (every way a provider is made gets the default
scope mappings) and tests/outpost/proxy/test_identity_required.py (a nameless login is a 500, never a 200).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support.browser import Browser
from tests.e2e.support.proxies import KINDS, Proxy
from tests.e2e.support.stack import Stack, execute_flow, login
from tests.e2e.support.upstream import header_values

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-blueprint-3!"  # noqa: S105 - a test password
GROUP = "bp-readers"

# authentik's documentation style: one provider + application per site, the embedded outpost serving them.
ENTRY = """
  - model: authentik_providers_proxy.proxyprovider
    id: provider-{kind}
    identifiers:
      name: bp-{kind}
    attrs:
      mode: forward_single
      external_host: {external}
      authorization_flow: !Find [authentik_flows.flow, [slug, default-provider-authorization-implicit-consent]]
      invalidation_flow: !Find [authentik_flows.flow, [slug, default-provider-invalidation-flow]]
  - model: authentik_core.application
    identifiers:
      slug: bp-{kind}
    attrs:
      name: bp-{kind}
      provider: !KeyOf provider-{kind}
"""
OUTPOST = """
  - model: authentik_outposts.outpost
    identifiers:
      managed: goauthentik.io/outposts/embedded
    attrs:
      providers: [{keys}]
"""


def write_blueprint(path: Path, proxies: dict[str, Proxy]) -> Path:
    entries = "".join(ENTRY.format(kind=kind, external=proxy.external_url) for kind, proxy in proxies.items())
    keys = ", ".join(f"!KeyOf provider-{kind}" for kind in proxies)
    path.write_text("version: 1\nmetadata:\n  name: whoami behind every proxy\nentries:" + entries
                    + OUTPOST.format(keys=keys))
    return path


@pytest.fixture(scope="module")
def proxies(stack: Stack, proxy_factory, upstream) -> Iterator[dict[str, Proxy]]:
    started = {kind: proxy_factory(kind, outpost=stack.outpost_address, upstream=upstream.address,
                                   app_host=f"bp-{kind}.app.test") for kind in KINDS}
    path = write_blueprint(stack.core.data_dir / "whoami-blueprint.yaml", started)
    applied = subprocess.run([sys.executable, "-m", "core.cli", "apply_blueprint", str(path)], cwd=stack.core.cwd,
                             env=stack.core.env, capture_output=True, text=True, timeout=180)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for proxy in started.values():
        stack.wait_served(proxy.external_url)
    yield started
    for proxy in started.values():
        proxy.stop()


@pytest.fixture(scope="module")
def dora(stack: Stack) -> dict:
    return stack.user("dora", PASSWORD, [GROUP], name="Dora Blueprint", email="dora@example.test")


def test_blueprint_provider_has_the_default_scopes(stack, proxies):
    for kind in proxies:
        provider = stack.api.first("/providers/proxy/", name=f"bp-{kind}")
        names = {stack.api("GET", f"/propertymappings/provider/scope/{pk}/")["scope_name"]
                 for pk in provider["property_mappings"]}
        assert {"openid", "profile", "email", "ak_proxy"} <= names, (kind, names)


@pytest.mark.parametrize("kind", KINDS)
def test_identity_headers_reach_the_upstream(kind, stack, proxies, dora):
    proxy = proxies[kind]
    with Browser() as browser:
        result = login(browser, proxy.external_url + "/whoami?x=1", "dora", PASSWORD)
        r = result.response
        assert r.status_code == 200 and r.headers.get("x-upstream") == "echo", \
            f"{kind}: {r.status_code} {r.text[:300]}\n{browser.trail()}\n{stack.logs()}"
    seen = r.json()
    got = {name: header_values(seen, name) for name in ("X-authentik-username", "X-authentik-email",
                                                         "X-authentik-name", "X-authentik-groups")}
    assert got == {"X-authentik-username": ["dora"], "X-authentik-email": ["dora@example.test"],
                   "X-authentik-name": ["Dora Blueprint"], "X-authentik-groups": [GROUP]}, (kind, got)


def test_a_login_that_names_no_one_is_a_500_not_the_upstream(stack, proxies, dora):
    """The other half, live: an administrator edits the profile mapping so it returns no preferred_username. A
    login through each proxy then ends in the outpost's 500 (nginx relays its callback's 500; Traefik and Caddy
    their forward-auth 500), never the upstream. Runs last: it restores the mapping afterwards."""
    profile = stack.api.first("/propertymappings/provider/scope/",
                              managed="goauthentik.io/providers/oauth2/scope-profile")
    stack.api("PATCH", f"/propertymappings/provider/scope/{profile['pk']}/",
              json={"expression": "return {'name': request.user.name}"})
    try:
        for kind, proxy in proxies.items():
            with Browser() as browser:
                first = browser.get(proxy.external_url + "/whoami")
                page = browser.follow_from(first)
                final = execute_flow(browser, page, "dora", PASSWORD)
                assert final.status_code == 500 and final.headers.get("x-upstream") != "echo", \
                    f"{kind}: {final.status_code} {final.text[:200]}\n{browser.trail()}"
                assert not any(h.status == 200 and "whoami" in h.url for h in browser.hops), browser.trail()
    finally:
        stack.api("PATCH", f"/propertymappings/provider/scope/{profile['pk']}/",
                  json={"expression": profile["expression"]})
