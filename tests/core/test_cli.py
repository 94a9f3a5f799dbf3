"""The ak command, run as a user would: a subprocess with the environment as its only input."""

import os
import subprocess
import sys

import pytest

from core.accounts.models import Group, Token, User

AK = [sys.executable, "-m", "core.cli"]
COMMANDS = ["server", "worker", "migrate", "showmigrations", "create_recovery_key", "create_admin_group",
            "apply_blueprint", "rotate_secret_key", "healthcheck"]


def ak(*args, env=None, check=False):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*AK, *args], capture_output=True, text=True, env=full_env, timeout=120, check=check)


def test_usage_lists_every_command():
    out = ak("--help").stdout
    for name in [*COMMANDS, "outpost proxy|ldap|radius"]:
        assert name in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command):
    result = ak(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: ak" in result.stdout


def test_bad_variable_stops_with_one_message(tmp_path):
    result = ak("migrate", env={"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_REDIS__HOST": "r", "AUTHENTIK_REDIS__PORT": "sixty"})
    assert result.returncode == 2
    assert "AUTHENTIK_REDIS__PORT='sixty': expected a whole number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db(transaction=True)
def test_recovery_key_and_admin_group(tmp_path):
    # Commands run in-process here so they use the test database (the subprocess cases above use the CLI).
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    User.objects.create_user("akadmin", "a@example.com")
    out = StringIO()
    call_command("create_recovery_key", "10", "akadmin", stdout=out)
    line = out.getvalue().strip().splitlines()[-1]
    assert line.startswith("/recovery/use-token/?token=")
    key = line.split("token=", 1)[1]
    token = Token.authenticate(key, ("recovery",))
    assert token is not None and token.user.username == "akadmin"
    assert token.expires.year >= 2035
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("create_recovery_key", "1", "ghost")
    call_command("create_admin_group", "akadmin", stdout=StringIO())
    assert Group.objects.get(name="authentik Admins").is_superuser
    assert User.objects.get(username="akadmin").is_superuser


def test_healthcheck_fails_without_server(tmp_path):
    result = ak("healthcheck", "--url", "http://127.0.0.1:9/-/health/live/", env={"AUTHENTIK_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0 and "unhealthy" in result.stderr
