"""The proxy outpost snapshot's ``access`` lists cost a bounded number of queries, independent of the number of
users: bindings (with concrete policies) load once per application, group memberships once per response."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.accounts.models import Application, Group, User
from core.outposts.models import Outpost
from core.outposts.service import ensure_identity
from core.policies.models import ExpressionPolicy, PolicyBinding
from core.providers.proxy.models import ProxyProvider

from .conftest import bearer

pytestmark = pytest.mark.django_db
USERS = 200
# Measured: ~20 for the whole response (auth, providers, scopes, bindings, users, memberships, groups).
MAX_QUERIES = 40


def _app(slug: str, outpost: Outpost) -> Application:
    provider = ProxyProvider.objects.create(name=slug, external_host=f"https://{slug}.example.com",
                                            mode="forward_single")
    outpost.providers.add(provider)
    return Application.objects.create(name=slug.title(), slug=slug, provider=provider)


@pytest.fixture
def world(db):
    outpost = Outpost.objects.create(name="proxy-outpost", type="proxy")
    by_group, by_expression, open_app = _app("staffonly", outpost), _app("expr", outpost), _app("open", outpost)
    parent = Group.objects.create(name="org")
    staff = Group.objects.create(name="staff", parent=parent)
    PolicyBinding.objects.create(target=by_group, group=parent, order=0)  # nested: members of staff pass
    policy = ExpressionPolicy.objects.create(
        name="even-or-org", expression="return ak_is_group_member(request.user, name='org') "
                                       "or request.user.username.endswith('0')")
    PolicyBinding.objects.create(target=by_expression, policy=policy, order=0)
    password = make_password(None)  # no hashing per user: this test is about queries
    users = User.objects.bulk_create([User(username=f"u{i:03d}", email=f"u{i:03d}@example.com", password=password,
                                           is_active=(i % 7 != 0)) for i in range(USERS)])
    staff.users.add(*[u for u in users if u.pk % 3 == 0])
    client = bearer(ensure_identity(outpost).readable_key)
    return client, {"staffonly": by_group, "expr": by_expression, "open": open_app}, users, staff


def _access(client) -> dict:
    response = client.get("/api/v3/outposts/proxy/")
    assert response.status_code == 200, response.content[:300]
    return {r["assigned_application_slug"]: r["access"] for r in response.json()["results"]}


def test_access_lists_cost_bounded_queries(world, django_assert_max_num_queries):
    client, apps, users, staff = world
    with django_assert_max_num_queries(MAX_QUERIES):
        access = _access(client)
    members = {u.uid for u in users if u.pk % 3 == 0 and u.is_active}
    inactive = {u.uid for u in users if not u.is_active}
    assert members and inactive
    assert access["staffonly"]["default"] == "deny" and set(access["staffonly"]["allow_subjects"]) == members
    expr_allowed = {u.uid for u in users if u.is_active and (u.pk % 3 == 0 or u.username.endswith("0"))}
    assert set(access["expr"]["allow_subjects"]) == expr_allowed
    assert access["open"]["default"] == "allow" and inactive <= set(access["open"]["deny_subjects"])


def test_queries_do_not_grow_with_users(world):
    client, _, _, staff = world

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            _access(client)
        return len(ctx.captured_queries)

    before = count()
    extra = User.objects.bulk_create([User(username=f"x{i}", password=make_password(None)) for i in range(50)])
    staff.users.add(*extra)
    assert count() == before
