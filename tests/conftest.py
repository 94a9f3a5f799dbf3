"""Suite-wide set-up. The backends come from the environment exactly as in production:
unset -> SQLite + in-process cache; AUTHENTIK_POSTGRESQL__HOST / AUTHENTIK_REDIS__HOST -> the real
services (``make test`` runs the core tests once each way).

Area fixtures live in tests/<area>/conftest.py; reusable helpers in tests/support/.
"""

import os
import tempfile

os.environ.setdefault("AUTHENTIK_DATA_DIR", tempfile.mkdtemp(prefix="gatehouse-test-"))
os.environ.setdefault("AUTHENTIK_SECRET_KEY", "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")

import pytest  # noqa: E402

CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, what: str) -> None:
    """Skip on a laptop without a real component; fail under CI=true, where it must be there."""
    if condition:
        return
    if CI:
        pytest.fail(f"{what} is required under CI=true (.ci/run installs it)")
    pytest.skip(f"{what} not available")


def pytest_runtest_setup(item):
    """``@pytest.mark.postgres``: a behaviour only PostgreSQL has (its Unicode-aware ``UPPER()``, advisory
    locks). Such a test runs in the PostgreSQL pass of ``make test`` (AUTHENTIK_POSTGRESQL__HOST set) and is
    skipped in the SQLite pass, which cannot show it; nothing is missing there, so CI=true skips it too."""
    if item.get_closest_marker("postgres") is None:
        return
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL: runs in the PostgreSQL pass (make test-services)")
