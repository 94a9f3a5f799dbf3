"""A database restored under another AUTHENTIK_SECRET_KEY (seed 004's migration with a new .env) used to start
"healthy" while the embedded outpost's derived token was refused and view_key handed out keys the core
refused (issue 8, item 19). Now every start and every ``ak`` command that uses the database compares the key
with the check value the database keeps, and stops with one message saying what to do; ``ak
rotate_secret_key --yes`` is the way out when the key is truly lost.
"""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from core.crypto import key_check
from core.crypto.models import SecretKeyCheck
from tests.support.ak import ak, one_error_line, operator_env
from tests.support.server import REPO, SECRET_KEY, start_core

OTHER_KEY = "another-secret-key-after-the-restore-0123456789abcdef"


# --- the check value ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_value_is_recorded_once_and_compared():
    assert key_check.matches("k" * 40) is None
    assert key_check.ensure("k" * 40, "db") is not None  # recorded
    assert key_check.ensure("k" * 40, "db") is None  # same key: nothing to say
    row = SecretKeyCheck.objects.get()
    assert "k" * 40 not in (row.salt + row.value)  # never the key itself
    assert key_check.matches("k" * 40) is True and key_check.matches("x" * 40) is False
    with pytest.raises(key_check.SecretKeyMismatch, match="differs from the one this database .db. was made with"):
        key_check.ensure("x" * 40, "db")
    assert not key_check.record("x" * 40)  # never overwritten by accident
    assert key_check.matches("k" * 40) is True


# --- the restore, as an operator lives it ------------------------------------------------------------------


@pytest.mark.e2e
def test_a_restored_database_under_another_key_does_not_start(tmp_path):
    """Seed 004: the database moves to a new machine whose .env has another AUTHENTIK_SECRET_KEY."""
    core = start_core(tmp_path / "data")
    try:
        core.terminate()
        core.env["AUTHENTIK_SECRET_KEY"] = OTHER_KEY
        for command in (("server", "--wait", "1"), ("worker", "--once", "--wait", "1"), ("migrate",),
                        ("create_admin_group", "akadmin"), ("apply_blueprint", str(tmp_path / "none.yaml"))):
            line = one_error_line(ak(core.env, *command))
            assert "differs from the one this database" in line and "ak rotate_secret_key --yes" in line, command
        # The original key starts again.
        core.env["AUTHENTIK_SECRET_KEY"] = SECRET_KEY
        core.launch()
        core.wait()
    finally:
        core.stop()


@pytest.mark.e2e
def test_a_database_made_before_the_check_gets_it_at_its_next_start(tmp_path):
    with operator_env(tmp_path) as env:
        migrate = ak(env, "migrate")
        assert migrate.returncode == 0, migrate.stderr
        assert "secret key check value recorded" in migrate.stdout
        drop = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n"
             "from core.crypto.models import SecretKeyCheck; SecretKeyCheck.objects.all().delete()"],
            cwd=REPO, env={**env, "DJANGO_SETTINGS_MODULE": "core.settings"}, capture_output=True, text=True,
            timeout=120)
        assert drop.returncode == 0, drop.stderr
        again = ak(env, "migrate")  # what every start runs
        assert "secret key check value recorded" in again.stdout, again.stdout + again.stderr
        line = one_error_line(ak({**env, "AUTHENTIK_SECRET_KEY": OTHER_KEY}, "create_admin_group", "akadmin"))
        assert "differs from the one this database" in line


@pytest.mark.e2e
def test_rotate_secret_key_makes_the_database_work_with_the_new_key(tmp_path):
    """The key is truly lost: rotate, then the server starts and the embedded outpost's token is accepted."""
    import httpx

    core = start_core(tmp_path / "data", bootstrap_token="bootstrap-token-0123456789")
    try:
        core.terminate()
        core.env["AUTHENTIK_SECRET_KEY"] = OTHER_KEY
        dry = ak(core.env, "rotate_secret_key")
        assert dry.returncode != 0 and "--yes" in dry.stderr and "embedded: nothing to do" in dry.stdout, dry.stdout
        rotated = ak(core.env, "rotate_secret_key", "--yes")
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "1 token(s) re-keyed" in rotated.stdout
        core.launch()
        core.wait()
        key = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n"
             "from core.accounts.models import Token; from core.outposts.models import Outpost\n"
             "o = Outpost.objects.get(managed='goauthentik.io/outposts/embedded')\n"
             "print(Token.objects.get(identifier=o.token_identifier).readable_key)"],
            cwd=REPO, env={**core.env, "DJANGO_SETTINGS_MODULE": "core.settings"}, capture_output=True, text=True,
            timeout=120).stdout.strip()
        answer = httpx.get(core.url + "/api/v3/outposts/instances/", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        # The bootstrap API token was not derived from the key: it still works.
        users = httpx.get(core.url + "/api/v3/core/users/",
                          headers={"Authorization": "Bearer bootstrap-token-0123456789"})
        assert users.status_code == 200, users.text
    finally:
        core.stop()


@pytest.mark.django_db(transaction=True)
def test_rotate_re_keys_derived_tokens_ends_sessions_and_rewrites_the_check():
    from django.contrib.sessions.backends.db import SessionStore

    from core.accounts.models import AuthenticatedSession, Token, User
    from core.outposts.models import Outpost
    from core.outposts.service import ensure_identity

    outpost = Outpost.objects.create(name="remote", type="proxy")
    old_key = ensure_identity(outpost).readable_key
    user = User.objects.create_user("someone", "s@example.com")
    store = SessionStore()
    store.create()
    AuthenticatedSession.objects.create(session_key=store.session_key, user=user)
    key_check.record("the-old-key-that-is-lost-0123456789")
    with override_settings(SECRET_KEY=OTHER_KEY):
        with pytest.raises(CommandError, match="--yes"):
            call_command("rotate_secret_key", stdout=StringIO())
        assert Token.authenticate(old_key, ("api",)) is not None  # the dry run changed nothing
        out = StringIO()
        call_command("rotate_secret_key", "--yes", stdout=out)
        token = Token.objects.get(identifier=outpost.token_identifier)
        assert Token.authenticate(token.readable_key, ("api",)) is not None
        assert Token.authenticate(old_key, ("api",)) is None
        assert "GET /api/v3/core/tokens/" in out.getvalue()  # a standalone outpost needs its new token
        assert not AuthenticatedSession.objects.exists()
        assert key_check.matches(OTHER_KEY) is True


@pytest.mark.django_db
def test_rotate_with_the_key_the_database_was_made_with_changes_nothing():
    from core.accounts.models import Token
    from core.outposts.models import Outpost
    from core.outposts.service import ensure_identity

    key = ensure_identity(Outpost.objects.create(name="remote", type="proxy")).readable_key
    key_check.record("the-key-this-database-was-made-with-0123")
    out = StringIO()
    with override_settings(SECRET_KEY="the-key-this-database-was-made-with-0123"):
        call_command("rotate_secret_key", "--yes", stdout=out)
        assert "nothing to rotate" in out.getvalue()
        assert Token.authenticate(key, ("api",)) is not None
