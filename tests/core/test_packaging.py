"""Static checks of what cannot run here (no Docker engine): images are non-root with a health check,
and the compose file is the seeds' stack with authentik's variable names."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.server import start_core

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


@pytest.mark.e2e
def test_the_wheel_the_images_install_serves_pages(tmp_path):
    """What the Dockerfiles do (`pip wheel .`, install it, run `ak` away from the sources), short of Docker:
    the wheel must carry every template, static file and default blueprint, or the image breaks."""
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("gatehouse-*.whl")
    site, run = tmp_path / "site", tmp_path / "run"
    run.mkdir()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    for expected in ("core/web/static/gatehouse.css", "core/flows/templates/flows/flow.html",
                     "core/blueprints/default/10-flow-default-authentication-flow.yaml", "outpost/proxy/oauth.py",
                     "protocols/outpost.py"):
        assert expected in names, f"{expected} is not in {wheel.name}"
    env = {"PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import core, outpost; print(core.__file__, outpost.__file__)"],
                           cwd=run, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert where.stdout.split() == [str(site / "core/__init__.py"), str(site / "outpost/__init__.py")], where

    core = start_core(tmp_path / "data", env=env, cwd=run)
    try:
        with httpx.Client(base_url=core.url, timeout=10) as client:
            page = client.get("/if/flow/default-authentication-flow/")
            assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:300]
            css = client.get("/static/gatehouse.css")
            assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
            assert client.get("/api/v3/schema/").status_code in (200, 401, 403)
    finally:
        core.stop()
