"""``ak apply_blueprint`` as an operator runs it: a subprocess against its own database.

On SQLite the database lives in a temporary AUTHENTIK_DATA_DIR; with AUTHENTIK_POSTGRESQL__HOST set
a throw-away PostgreSQL database is created for the module and dropped afterwards.
"""

import os
import subprocess
import sys
import uuid

import pytest

AK = [sys.executable, "-m", "core.cli"]
GOOD = """version: 1
metadata: {name: CLI test}
entries:
  - {model: authentik_core.group, id: g, identifiers: {name: cli-group}}
  - {model: authentik_core.user, identifiers: {username: cli-user}, attrs: {password: !Env CLI_PW, groups: [!KeyOf g]}}
"""
BAD = """version: 1
metadata: {name: CLI bad}
entries:
  - {model: authentik_core.group, identifiers: {name: never-there}}
  - {model: authentik_flows.flow, identifiers: {slug: f}, attrs: {name: F, designation: authentication, colour: red}}
"""


@pytest.fixture(scope="module")
def ak_env(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("bp-cli")
    env = {**os.environ, "AUTHENTIK_DATA_DIR": str(data_dir), "AUTHENTIK_BLUEPRINTS_DIR": str(data_dir / "bp"),
           "CLI_PW": "cli-password-123"}
    dbname = None
    if os.environ.get("AUTHENTIK_POSTGRESQL__HOST"):
        import psycopg

        dbname = f"bp_cli_{uuid.uuid4().hex[:12]}"
        admin = dict(host=os.environ["AUTHENTIK_POSTGRESQL__HOST"], user=os.environ.get("AUTHENTIK_POSTGRESQL__USER", "authentik"),
                     password=os.environ.get("AUTHENTIK_POSTGRESQL__PASSWORD") or None,
                     port=int(os.environ.get("AUTHENTIK_POSTGRESQL__PORT", "5432")), dbname="postgres", autocommit=True)
        with psycopg.connect(**admin) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        env["AUTHENTIK_POSTGRESQL__NAME"] = dbname
    migrate = subprocess.run([*AK, "migrate", "--skip-checks", "--schema-only", "-v0"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    yield env
    if dbname:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')


def ak(env, *args):
    return subprocess.run([*AK, *args], env=env, capture_output=True, text=True, timeout=120)


def query(env, code):
    """Run ``code`` with Django set up against the subprocess database; return its stdout."""
    script = f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='core.settings'; django.setup()\n{code}"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_apply_then_reapply(ak_env, tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    first = ak(ak_env, "apply_blueprint", str(path))
    assert first.returncode == 0, first.stderr
    assert f"blueprint {path} (CLI test): successful: 2 created" in first.stdout
    assert "1 of 1 blueprint(s) applied" in first.stdout
    second = ak(ak_env, "apply_blueprint", str(path))
    assert second.returncode == 0 and "successful: 2 unchanged" in second.stdout
    out = query(ak_env, "from core.accounts.models import User; u = User.objects.get(username='cli-user'); "
                        "print(u.check_password('cli-password-123'), u.groups.get().name)")
    assert out == "True cli-group"


def test_failure_exits_non_zero_with_the_reason_and_applies_nothing(ak_env, tmp_path):
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_text(BAD)
    good.write_text(GOOD.replace("cli-group", "cli-group-2").replace("cli-user", "cli-user-2"))
    result = ak(ak_env, "apply_blueprint", str(bad), str(good))
    assert result.returncode == 1
    assert f"error: {bad}: entry 1 (authentik_flows.flow, identifiers {{'slug': 'f'}}): field 'colour'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "1 of 2 blueprint(s) applied" in result.stdout
    assert query(ak_env, "from core.accounts.models import Group; "
                         "print(sorted(Group.objects.filter(name__in=['never-there', 'cli-group-2']).values_list('name', flat=True)))") \
        == "['cli-group-2']"


def test_missing_file_and_no_argument(ak_env, tmp_path):
    missing = ak(ak_env, "apply_blueprint", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "cannot read the file" in missing.stderr
    none = ak(ak_env, "apply_blueprint")
    assert none.returncode != 0 and "file" in none.stderr


def test_help(ak_env):
    result = ak(ak_env, "apply_blueprint", "--help")
    assert result.returncode == 0 and "usage: ak apply_blueprint" in result.stdout


def test_concurrent_startups_apply_builtins_once_without_errors(ak_env):
    """``ak server`` and ``ak worker`` start together on a fresh database: both must come up clean."""
    script = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE']='core.settings'; django.setup()\n"
              "from core.blueprints.apply import apply_startup_blueprints\n"
              "print('\\n'.join(apply_startup_blueprints()))")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=ak_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "error" not in out, out
    applied = sum(out.count(": successful:") for out, _ in outputs)
    unchanged = sum(out.count(": unchanged") for out, _ in outputs)
    assert applied == unchanged == len(outputs[0][0].splitlines())  # each file applied once, skipped once
    assert query(ak_env, "from core.outposts.models import Outpost; print(Outpost.objects.count())") == "1"
