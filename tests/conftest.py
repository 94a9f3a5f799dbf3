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
