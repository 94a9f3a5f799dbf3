"""The files in configs/ agree with each other, with the identity header contract (DESIGN.md §2) and with
the seeds, and every placeholder is documented. No proxy binary needed; test_harness.py runs them."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.e2e.support.render import CONFIGS, RenderError, placeholders, render_text
from tests.e2e.support.stub_auth import IDENTITY

FILES = ["traefik/dynamic.yml", "traefik/traefik.yml", "traefik/docker-labels.yml", "caddy/Caddyfile",
         "nginx/outpost-location.conf", "nginx/auth-request.conf", "nginx/app.conf",
         "nginx/core-load-balancer.conf"]
# The seed's Traefik labels (authResponseHeaders), which must keep working unchanged.
SEED_TRAEFIK_HEADERS = ("authorization,X-authentik-username,X-authentik-groups,X-authentik-email,X-authentik-name,"
                        "X-authentik-uid,X-authentik-jwt,X-authentik-meta-jwks,X-authentik-meta-outpost,"
                        "X-authentik-meta-provider,X-authentik-meta-app,X-authentik-meta-version").split(",")
AUTH_PATH = "/outpost.goauthentik.io/auth/"


def lower(names) -> set[str]:
    return {n.lower() for n in names}


@pytest.mark.parametrize("relative", FILES)
def test_placeholders_are_documented(relative):
    text = (CONFIGS / relative).read_text()
    readme = (CONFIGS / "README.md").read_text()
    header = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    for name in placeholders(relative):
        assert f"${{{name}}}" in header, f"{relative}: document ${{{name}}} in its header comment"
        assert f"${{{name}}}" in readme, f"configs/README.md: document ${{{name}}}"


def test_render_refuses_a_missing_value():
    with pytest.raises(RenderError, match="OUTPOST"):
        render_text("proxy_pass http://${OUTPOST}; set $x ${scheme};", {}, "t")
    assert render_text("a ${X} $host ${host} {$ENV}", {"X": "1"}) == "a 1 $host ${host} {$ENV}"


def traefik_dynamic() -> dict:
    return yaml.safe_load((CONFIGS / "traefik/dynamic.yml").read_text())


def test_traefik_dynamic_matches_authentik_docs_and_seed():
    http = traefik_dynamic()["http"]
    fa = http["middlewares"]["authentik"]["forwardAuth"]
    assert fa["address"] == "http://${OUTPOST}/outpost.goauthentik.io/auth/traefik"
    assert fa["trustForwardHeader"] is True
    assert lower(fa["authResponseHeaders"]) == lower(IDENTITY) | {"authorization"}
    assert lower(SEED_TRAEFIK_HEADERS) <= lower(fa["authResponseHeaders"])
    routers = http["routers"]
    assert routers["app"]["middlewares"] == ["authentik"]
    outpost = routers["app-outpost"]
    assert "PathPrefix(`/outpost.goauthentik.io/`)" in outpost["rule"] and "middlewares" not in outpost
    assert outpost["priority"] > routers["app"]["priority"]


def test_traefik_docker_labels_match_the_file_provider():
    fa = traefik_dynamic()["http"]["middlewares"]["authentik"]["forwardAuth"]
    services = yaml.safe_load((CONFIGS / "traefik/docker-labels.yml").read_text())["services"]
    labels = services["server"]["labels"]
    prefix = "traefik.http.middlewares.authentik.forwardauth."
    assert labels[prefix + "address"].endswith("/outpost.goauthentik.io/auth/traefik")
    assert labels[prefix + "trustForwardHeader"] == "true"
    assert labels[prefix + "authResponseHeaders"].split(",") == fa["authResponseHeaders"]
    assert services["whoami"]["labels"]["traefik.http.routers.whoami.middlewares"] == "authentik@docker"


def test_caddy_copies_every_identity_header_in_canonical_case():
    text = (CONFIGS / "caddy/Caddyfile").read_text()
    assert "uri /outpost.goauthentik.io/auth/caddy" in text
    assert "trusted_proxies private_ranges" in text
    copied = re.search(r"^\s*copy_headers (.+)$", text, re.M).group(1).split()
    # Caddy matches these case-sensitively against Go's canonical form (Caddy #5038).
    assert copied == ["-".join(p.capitalize() for p in name.split("-")) for name in IDENTITY]
    assert "reverse_proxy /outpost.goauthentik.io/* http://${OUTPOST}" in text


def test_nginx_passes_every_identity_header():
    text = (CONFIGS / "nginx/auth-request.conf").read_text()
    active = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "auth_request     /outpost.goauthentik.io/auth/nginx;" in active
    assert "error_page       401 = @goauthentik_proxy_signin;" in active
    for name in IDENTITY:
        var = "authentik_" + name.lower().removeprefix("x-authentik-").replace("-", "_")
        upstream_var = "upstream_http_" + name.lower().replace("-", "_")
        assert f"auth_request_set ${var} ${upstream_var};" in active
        assert f"proxy_set_header {name} ${var};" in active
    outpost = (CONFIGS / "nginx/outpost-location.conf").read_text()
    assert "proxy_set_header        X-Original-URL $scheme://$http_host$request_uri;" in outpost
    assert "X-Original-URI" not in outpost  # DESIGN.md §2: never X-Original-URI
    assert "return 302 /outpost.goauthentik.io/start?rd=" in outpost


@pytest.mark.parametrize("relative", FILES)
def test_auth_endpoints_use_the_right_flavour(relative):
    text = (CONFIGS / relative).read_text()
    flavours = set(re.findall(re.escape(AUTH_PATH) + r"(\w+)", text))
    expected = {"traefik": {"traefik"}, "caddy": {"caddy"}, "nginx": {"nginx"}}[relative.split("/")[0]]
    assert flavours <= expected
