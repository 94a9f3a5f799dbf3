"""Static checks of what cannot run here (no Docker engine): images are non-root with a health check,
and the compose file is the seeds' stack with authentik's variable names."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfiles_non_root_with_healthcheck():
    for name in ("Dockerfile.core", "Dockerfile.outpost"):
        text = (ROOT / name).read_text()
        assert "\nUSER " in text and "USER root" not in text, name
        assert "HEALTHCHECK" in text, name


def test_compose_is_the_seed_stack():
    compose = yaml.safe_load((ROOT / "configs/docker-compose.yml").read_text())
    assert set(compose["services"]) == {"postgresql", "redis", "server", "worker"}
    server = compose["services"]["server"]
    assert server["command"] == "server" and compose["services"]["worker"]["command"] == "worker"
    for var in ("AUTHENTIK_REDIS__HOST", "AUTHENTIK_POSTGRESQL__HOST", "AUTHENTIK_POSTGRESQL__USER",
                "AUTHENTIK_POSTGRESQL__NAME", "AUTHENTIK_POSTGRESQL__PASSWORD", "AUTHENTIK_SECRET_KEY"):
        assert var in server["environment"]
    assert "9000:9000" in " ".join(server["ports"]).replace("${COMPOSE_PORT_HTTP:-9000}", "9000")
