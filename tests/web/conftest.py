"""The flow fixtures the web tests share with tests/flows (the default blueprints' flows), and a signed-in
superuser's client for the admin pages."""

import pytest
from django.test import Client

from tests.flows.conftest import default_flows  # noqa: F401 - a fixture


@pytest.fixture
def admin_client(default_flows) -> Client:  # noqa: F811 - the fixture imported above
    """``root``, a member of a superuser group, signed in (force_login records the session row)."""
    from core.accounts.models import Group, User

    user = User.objects.create_user("root", "root@example.com", "admin-pass-1")
    user.groups.add(Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})[0])
    client = Client()
    client.force_login(user)
    return client
