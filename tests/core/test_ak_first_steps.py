"""A newcomer's first ``ak`` commands, run as they run them: a subprocess whose only input is its environment
(issue 8, items 18, 20 and 22).

- every command that needs the database says what to run when it was never migrated (one line, exit != 0);
- ``ak migrate`` alone leaves a complete instance (default blueprints, the embedded outpost), as a start does;
- a data directory that does not exist is refused (not silently created) by commands other than server,
  worker and migrate, and every command says which data directory it uses;
- Redis or PostgreSQL unreachable at start: one message naming the variable and the wait, exit != 0;
- ``ak create_admin_group`` without its argument says what it needs and where a lost password is recovered.

In the PostgreSQL pass each test gets a database of its own (tests/support/server.py).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support.ak import ak, one_error_line, operator_env
from tests.support.server import REPO, free_port

EMBEDDED_BLUEPRINT = """version: 1
metadata: {name: newcomer - app on the embedded outpost}
entries:
  - model: authentik_providers_proxy.proxyprovider
    id: provider
    identifiers: {name: whoami}
    attrs:
      mode: forward_single
      external_host: https://whoami.example.com
      authorization_flow: !Find [authentik_flows.flow, [slug, default-provider-authorization-implicit-consent]]
      invalidation_flow: !Find [authentik_flows.flow, [slug, default-provider-invalidation-flow]]
  - model: authentik_core.application
    identifiers: {slug: whoami}
    attrs: {name: whoami, provider: !KeyOf provider}
  - model: authentik_outposts.outpost
    identifiers: {managed: goauthentik.io/outposts/embedded}
    attrs:
      providers: [!KeyOf provider]
"""


@pytest.fixture
def ak_env(tmp_path):
    with operator_env(tmp_path) as env:
        yield env


# --- item 18: unmigrated database; `ak migrate` completes the instance -------------------------------------


@pytest.mark.parametrize("args", [("apply_blueprint", "{bp}"), ("create_admin_group", "akadmin"),
                                  ("create_recovery_key", "1", "akadmin")])
def test_commands_on_an_unmigrated_database_say_what_to_run(ak_env, tmp_path, args):
    (tmp_path / "data").mkdir()
    blueprint = tmp_path / "bp.yaml"
    blueprint.write_text(EMBEDDED_BLUEPRINT)
    result = ak(ak_env, *[a.format(bp=blueprint) for a in args])
    line = one_error_line(result)
    assert "not migrated" in line and "ak migrate" in line, line


def test_migrate_alone_leaves_a_complete_instance(ak_env, tmp_path):
    migrate = ak(ak_env, "migrate")
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "embedded-outpost" in migrate.stdout, migrate.stdout  # the default blueprints' lines
    blueprint = tmp_path / "bp.yaml"
    blueprint.write_text(EMBEDDED_BLUEPRINT)
    applied = ak(ak_env, "apply_blueprint", str(blueprint))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n"
         "from core.outposts.models import Outpost\n"
         "o = Outpost.objects.get(managed='goauthentik.io/outposts/embedded')\n"
         "print(o.name, sorted(p.name for p in o.providers.all()))"],
        cwd=REPO, env={**ak_env, "DJANGO_SETTINGS_MODULE": "core.settings"}, capture_output=True, text=True,
        timeout=120)
    assert check.stdout.strip() == "authentik Embedded Outpost ['whoami']", check.stdout + check.stderr


# --- item 22: the data directory -------------------------------------------------------------------------


def test_a_missing_data_directory_is_refused_not_created(ak_env, tmp_path):
    missing = tmp_path / "elsewhere" / "data"
    env = {**ak_env, "AUTHENTIK_DATA_DIR": str(missing)}
    env.pop("AUTHENTIK_POSTGRESQL__HOST", None)  # the SQLite case: the data directory is the database
    result = ak(env, "create_admin_group", "akadmin", cwd=tmp_path)
    line = one_error_line(result)
    assert str(missing) in line and "ak migrate" in line, line
    assert not missing.exists() and not missing.parent.exists()


def test_every_command_says_which_data_directory_it_uses(ak_env, tmp_path):
    (tmp_path / "data").mkdir()
    result = ak(ak_env, "showmigrations", "authentik_crypto")
    assert result.returncode == 0, result.stderr
    assert f"data directory {tmp_path / 'data'}" in result.stderr


def test_without_the_variable_a_checkout_uses_its_own_data_directory(tmp_path):
    from core.config import resolve_data_dir

    where = resolve_data_dir({})
    assert where.path == REPO / "data" and where.origin == "checkout"
    assert resolve_data_dir({"AUTHENTIK_DATA_DIR": str(tmp_path)}).path == tmp_path


def test_an_installed_copy_without_the_variable_uses_the_working_directory(monkeypatch, tmp_path):
    from core import config

    monkeypatch.setattr(config, "checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    where = config.resolve_data_dir({})
    assert where.path == tmp_path / "data" and where.origin == "working directory"
    assert "AUTHENTIK_DATA_DIR" in where.describe()


# --- item 22: create_admin_group without an argument --------------------------------------------------------


def test_create_admin_group_without_a_username_says_what_it_needs(ak_env):
    assert ak(ak_env, "migrate").returncode == 0
    result = ak(ak_env, "create_admin_group")
    line = one_error_line(result)
    assert "username" in line and "ak create_recovery_key" in line, line


# --- item 20: Redis or PostgreSQL unreachable at start -------------------------------------------------------


@pytest.mark.parametrize("command", [("server",), ("worker", "--once")])
def test_redis_unreachable_at_start_is_one_message_after_a_bounded_wait(ak_env, command):
    port = free_port()
    env = {**ak_env, "AUTHENTIK_REDIS__HOST": "127.0.0.1", "AUTHENTIK_REDIS__PORT": str(port)}
    started = time.monotonic()
    result = ak(env, *command, "--wait", "2")
    line = one_error_line(result)
    assert f"AUTHENTIK_REDIS__HOST:PORT=127.0.0.1:{port}" in line and "within 2 s" in line, line
    assert time.monotonic() - started < 120  # bounded (the subprocess timeout would say so otherwise)


@pytest.mark.parametrize("command", [("server",), ("worker", "--once"), ("migrate",)])
def test_postgresql_unreachable_at_start_is_one_message_after_a_bounded_wait(ak_env, command):
    port = free_port()
    env = {**ak_env, "AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": str(port)}
    env.pop("AUTHENTIK_REDIS__HOST", None)
    result = ak(env, *command, "--wait", "2")
    line = one_error_line(result)
    assert f"AUTHENTIK_POSTGRESQL__HOST:PORT=127.0.0.1:{port}" in line and "within 2 s" in line, line
