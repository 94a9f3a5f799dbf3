"""Fixtures for tests of ``ak server`` (a real subprocess; see tests/support/server.py)."""

import itertools

import pytest

from tests.support.server import start_core


@pytest.fixture
def core_factory(tmp_path):
    """``core_factory(**kw)`` starts an ``ak server`` (see start_core); every one is stopped at teardown."""
    started = []
    counter = itertools.count()

    def start(**kwargs):
        kwargs.setdefault("tmp_path", tmp_path / f"core{next(counter)}")
        core = start_core(**kwargs)
        started.append(core)
        return core

    yield start
    for core in reversed(started):
        core.stop()


@pytest.fixture
def core(core_factory):
    """One running core with an administrator (akadmin / 'admin-password-1') and an API token."""
    return core_factory(bootstrap_password=ADMIN_PASSWORD, bootstrap_token=ADMIN_TOKEN)


ADMIN_PASSWORD = "admin-password-1"  # noqa: S105 - test value
ADMIN_TOKEN = "bootstrap-token-0123456789abcdef"  # noqa: S105 - test value
