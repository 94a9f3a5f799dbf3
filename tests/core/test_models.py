import pytest

from core.accounts.models import Group, Token, TokenIntents, User

pytestmark = pytest.mark.django_db


def test_seed_sql_names_work():
    from django.db import connection

    User.objects.create_user("alice", "alice@example.com", "pw")
    with connection.cursor() as cur:
        cur.execute("SELECT username, email, is_active FROM authentik_core_user")
        assert ("alice", "alice@example.com", True) in cur.fetchall()


def test_password_is_argon2_and_superuser_via_nested_group():
    user = User.objects.create_user("bob", password="correct horse")
    assert user.password.startswith("argon2")
    assert user.check_password("correct horse")
    parent = Group.objects.create(name="admins", is_superuser=True)
    child = Group.objects.create(name="ops", parent=parent, attributes={"team": "ops"})
    assert not user.is_superuser
    user.groups.add(child)
    assert user.is_superuser
    assert {g.name for g in user.all_groups()} == {"admins", "ops"}
    assert user.group_attributes()["team"] == "ops"
    assert child.num_pk and parent.num_pk and child.num_pk != parent.num_pk


def test_token_keys_are_hashed():
    user = User.objects.create_user("svc")
    token = Token(identifier="t1", intent=TokenIntents.INTENT_API, user=user, expiring=False, expires=None)
    key = token.set_key()
    token.save()
    assert key not in token.key_hash
    assert Token.authenticate(key, ("api",)) == token
    assert Token.authenticate(key, ("app_password",)) is None
    assert Token.authenticate("wrong", ("api",)) is None
    user.is_active = False
    user.save()
    assert Token.authenticate(key, ("api",)) is None


def test_outpost_gets_service_account_and_readable_token():
    from core.outposts.models import Outpost
    from core.outposts.service import outpost_for_user

    outpost = Outpost.objects.create(name="edge", type="proxy")
    token = Token.objects.get(identifier=outpost.token_identifier)
    key = token.readable_key
    assert key and Token.authenticate(key, ("api",)) == token
    assert token.user.type == "internal_service_account"
    assert outpost_for_user(token.user) == outpost
    outpost.save()  # idempotent
    assert Token.objects.filter(identifier=outpost.token_identifier).count() == 1
