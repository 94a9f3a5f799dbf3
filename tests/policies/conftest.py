"""Fixtures of the policy tests."""

import pytest

from core.accounts.models import Application, User


@pytest.fixture
def app(db) -> Application:
    return Application.objects.create(name="Wiki", slug="wiki")


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", "alice@example.com", "pw")
