"""The ``access`` field of GET /api/v3/outposts/proxy/ (shape: protocols/proxy_provider.py), computed with the
policy engine over every user, keyed by the OIDC ``sub`` the provider issues. THREATS 8, 12."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.accounts.models import Application, Group, User, UserTypes
from core.api.outpost_config import subject_for
from core.oidc.models import SubModes
from core.outposts.models import Outpost
from core.outposts.service import ensure_identity
from core.policies.models import ExpressionPolicy, PolicyBinding
from core.providers.proxy.models import ProxyProvider
from protocols.proxy_provider import Access

from .conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db):
    provider = ProxyProvider.objects.create(name="whoami", external_host="https://whoami.example.com",
                                            mode="forward_single")
    app = Application.objects.create(name="Who Am I", slug="whoami", provider=provider)
    outpost = Outpost.objects.create(name="proxy-outpost", type="proxy")
    outpost.providers.add(provider)
    client = bearer(ensure_identity(outpost).readable_key)
    users = {name: User.objects.create_user(name, f"{name}@example.com", "pw") for name in ("alice", "bob", "carol")}
    return provider, app, client, users


def access_of(client) -> dict:
    body = client.get("/api/v3/outposts/proxy/").json()
    assert len(body["results"]) == 1
    return body["results"][0]["access"]


def test_no_bindings_default_allow_inactive_and_service_accounts_denied(setup):
    provider, _, client, users = setup
    users["carol"].is_active = False
    users["carol"].save()
    robot = User.objects.create_user("robot", type=UserTypes.SERVICE_ACCOUNT)
    access = access_of(client)
    assert access["default"] == "allow" and access["allow_subjects"] == []
    assert {users["carol"].uid, robot.uid} <= set(access["deny_subjects"])  # + the outpost's own account
    assert users["alice"].uid not in access["deny_subjects"]
    parsed = Access.from_json(access)  # the outpost accepts exactly this shape
    assert parsed.allows(users["alice"].uid) and not parsed.allows(users["carol"].uid)


def test_group_binding_allows_only_members_and_follows_membership(setup):
    _, app, client, users = setup
    staff = Group.objects.create(name="staff")
    users["alice"].groups.add(staff)
    PolicyBinding.objects.create(target=app, group=staff, order=0)
    access = access_of(client)
    assert access == {"default": "deny", "allow_subjects": [users["alice"].uid], "deny_subjects": []}
    users["alice"].groups.remove(staff)
    users["bob"].groups.add(staff)
    assert access_of(client)["allow_subjects"] == [users["bob"].uid]


def test_nested_group_membership_counts(setup):
    _, app, client, users = setup
    parent = Group.objects.create(name="parent")
    child = Group.objects.create(name="child", parent=parent)
    users["bob"].groups.add(child)
    PolicyBinding.objects.create(target=app, group=parent, order=0)
    assert access_of(client)["allow_subjects"] == [users["bob"].uid]


def test_deactivated_member_never_allowed(setup):
    _, app, client, users = setup
    staff = Group.objects.create(name="staff")
    for user in users.values():
        user.groups.add(staff)
    PolicyBinding.objects.create(target=app, group=staff, order=0)
    users["bob"].is_active = False
    users["bob"].save()
    access = access_of(client)
    assert users["bob"].uid not in access["allow_subjects"]
    assert set(access["allow_subjects"]) == {users["alice"].uid, users["carol"].uid}
    assert not Access.from_json(access).allows(users["bob"].uid)


def test_user_binding_negated_and_expression_policy(setup):
    _, app, client, users = setup
    PolicyBinding.objects.create(target=app, user=users["alice"], order=0, negate=True)
    assert set(access_of(client)["allow_subjects"]) == {users["bob"].uid, users["carol"].uid}
    PolicyBinding.objects.all().delete()
    policy = ExpressionPolicy.objects.create(name="only-carol",
                                             expression="return request.user.username == 'carol'")
    PolicyBinding.objects.create(target=app, policy=policy, order=0)
    assert access_of(client)["allow_subjects"] == [users["carol"].uid]


def test_failing_expression_denies(setup):
    _, app, client, users = setup
    policy = ExpressionPolicy.objects.create(name="broken", expression="raise ValueError('boom')")
    PolicyBinding.objects.create(target=app, policy=policy, order=0)
    assert access_of(client) == {"default": "deny", "allow_subjects": [], "deny_subjects": []}


def test_disabled_binding_ignored(setup):
    _, app, client, _ = setup
    PolicyBinding.objects.create(target=app, group=Group.objects.create(name="g"), order=0, enabled=False)
    assert access_of(client)["default"] == "allow"


@pytest.mark.parametrize(("mode", "expected"), [
    (SubModes.HASHED_USER_ID, lambda u: u.uid), (SubModes.USER_ID, lambda u: str(u.pk)),
    (SubModes.USER_UUID, lambda u: str(u.uuid)), (SubModes.USER_EMAIL, lambda u: u.email),
    (SubModes.USER_USERNAME, lambda u: u.username), (SubModes.USER_UPN, lambda u: u.uid)])
def test_subjects_follow_sub_mode(setup, mode, expected):
    provider, app, client, users = setup
    provider.sub_mode = mode
    provider.save()
    PolicyBinding.objects.create(target=app, user=users["alice"], order=0)
    assert subject_for(provider, users["alice"]) == expected(users["alice"])
    assert access_of(client)["allow_subjects"] == [expected(users["alice"])]


def test_upn_attribute_used_when_set(setup):
    provider, _, _, users = setup
    provider.sub_mode = SubModes.USER_UPN
    users["alice"].attributes = {"upn": "alice@corp"}
    assert subject_for(provider, users["alice"]) == "alice@corp"


def test_group_lookups_do_not_grow_with_users(setup):
    """The user list costs a fixed number of queries; per user only the bindings query of the engine."""
    _, app, client, users = setup
    staff = Group.objects.create(name="staff")
    PolicyBinding.objects.create(target=app, group=staff, order=0)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            access_of(client)
        return len(ctx.captured_queries)

    before = count()
    for i in range(10):
        User.objects.create_user(f"extra{i}").groups.add(staff)
    after = count()
    assert after - before <= 10  # one binding query per extra user, none for their groups
