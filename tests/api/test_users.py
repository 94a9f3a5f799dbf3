"""Users and groups: CRUD, authentik's filters, users/me, set_password."""

import pytest
from rest_framework.test import APIClient

from core.accounts.models import Group, User
from core.events.models import Event

from .conftest import bearer

pytestmark = pytest.mark.django_db


def test_user_crud_and_password(admin):
    group = Group.objects.create(name="staff")
    resp = admin.post("/api/v3/core/users/", {"username": "bob", "name": "Bob", "email": "bob@example.com",
                                              "groups": [str(group.pk)], "attributes": {"a": 1}}, format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["username"] == "bob" and body["groups"] == [str(group.pk)] and body["is_superuser"] is False
    pk = body["pk"]
    bob = User.objects.get(pk=pk)
    assert not bob.has_usable_password()
    assert admin.post(f"/api/v3/core/users/{pk}/set_password/", {"password": "n3w-pass"},
                      format="json").status_code == 204
    bob.refresh_from_db()
    assert bob.check_password("n3w-pass")
    assert Event.objects.filter(action="password_set").exists()
    assert admin.patch(f"/api/v3/core/users/{pk}/", {"is_active": False}, format="json").json()["is_active"] is False
    assert admin.delete(f"/api/v3/core/users/{pk}/").status_code == 204
    assert not User.objects.filter(pk=pk).exists()


def test_user_validation(admin):
    resp = admin.post("/api/v3/core/users/", {"username": "svc", "type": "internal_service_account"}, format="json")
    assert resp.status_code == 400 and "type" in resp.json()
    resp = admin.post("/api/v3/core/users/", {"username": "x", "email": "not-an-email"}, format="json")
    assert resp.status_code == 400 and "email" in resp.json()


def test_user_filters(admin, admin_user):
    staff = Group.objects.create(name="staff")
    u1 = User.objects.create_user("u1", "u1@example.com")
    u1.groups.add(staff)
    User.objects.create_user("u2", "u2@example.com", is_active=False)
    User.objects.create_user("svc", type="service_account")

    def names(query):
        resp = admin.get(f"/api/v3/core/users/?{query}")
        assert resp.status_code == 200, resp.content
        return sorted(u["username"] for u in resp.json()["results"])

    assert names("username=u1") == ["u1"]
    assert names("email=u2@example.com") == ["u2"]
    assert names("is_active=false") == ["u2"]
    assert names("groups_by_name=staff") == ["u1"]
    assert names("type=service_account") == ["svc"]
    assert names("search=u") == ["u1", "u2"]
    assert admin.get("/api/v3/core/users/?groups_by_name=nope").status_code == 400
    with_groups = admin.get("/api/v3/core/users/?username=u1").json()["results"][0]
    assert with_groups["groups_obj"][0]["name"] == "staff"
    assert admin.get("/api/v3/core/users/?username=u1&include_groups=false").json()["results"][0]["groups_obj"] \
        is None
    me = admin.get(f"/api/v3/core/users/{admin_user.pk}/").json()
    assert me["is_superuser"] is True


def test_users_me(alice_api, admin):
    body = alice_api.get("/api/v3/core/users/me/").json()
    assert set(body) == {"user", "users"} and body["users"] == []  # authentik's other signed-in accounts: none
    assert body["user"]["username"] == "alice" and body["user"]["is_superuser"] is False
    assert body["user"]["is_current"] is True and body["user"]["roles"] == []
    assert isinstance(body["user"]["pk"], int)
    assert admin.get("/api/v3/core/users/me/").json()["user"]["is_superuser"] is True
    assert APIClient().get("/api/v3/core/users/me/").status_code == 401
    assert alice_api.post(f"/api/v3/core/users/{body['user']['pk']}/set_password/", {"password": "x"},
                          format="json").status_code == 403


def test_cannot_delete_self(admin, admin_user):
    resp = admin.delete(f"/api/v3/core/users/{admin_user.pk}/")
    assert resp.status_code == 403 and "own account" in resp.json()["detail"]


def test_group_crud_and_filters(admin, alice):
    resp = admin.post("/api/v3/core/groups/", {"name": "devs", "users": [alice.pk]}, format="json")
    assert resp.status_code == 201, resp.content
    devs = resp.json()
    assert devs["users_obj"][0]["username"] == "alice" and devs["num_pk"] is not None
    child = admin.post("/api/v3/core/groups/", {"name": "sub", "parent": devs["pk"]}, format="json").json()
    assert child["parent_name"] == "devs"
    cycle = admin.patch(f"/api/v3/core/groups/{devs['pk']}/", {"parent": child["pk"]}, format="json")
    assert cycle.status_code == 400 and "parent" in cycle.json()
    assert [g["name"] for g in admin.get("/api/v3/core/groups/?members_by_username=alice").json()["results"]] == \
        ["devs"]
    assert [g["name"] for g in admin.get(f"/api/v3/core/groups/?members_by_pk={alice.pk}").json()["results"]] == \
        ["devs"]
    assert admin.get("/api/v3/core/groups/?name=sub").json()["results"][0]["name"] == "sub"
    assert admin.get("/api/v3/core/groups/?name=devs&include_users=false").json()["results"][0]["users_obj"] is None
    assert admin.delete(f"/api/v3/core/groups/{devs['pk']}/").status_code == 204


def test_superuser_via_api_group(admin, alice):
    admins = Group.objects.get(name="authentik Admins")
    assert admin.patch(f"/api/v3/core/groups/{admins.pk}/", {"users": [*admins.users.values_list("pk", flat=True),
                                                                        alice.pk]}, format="json").status_code == 200
    alice.refresh_from_db()
    from .conftest import api_token
    assert bearer(api_token(alice, "alice-now-admin")).get("/api/v3/core/users/").status_code == 200


def test_service_account_creation(admin):
    resp = admin.post("/api/v3/core/users/service_account/", {"name": "backup-bot", "create_group": True,
                                                              "expiring": False}, format="json")
    assert resp.status_code == 200, resp.content  # as authentik (its client reads the token from a 200 only)
    body = resp.json()
    assert body["username"] == "backup-bot" and body["token"] and body["group_pk"]
    user = User.objects.get(pk=body["user_pk"])
    assert user.type == "service_account" and user.groups.get().name == "backup-bot"
    from core.accounts.models import Token
    assert Token.authenticate(body["token"], ("app_password",)).user == user
    again = admin.post("/api/v3/core/users/service_account/", {"name": "backup-bot"}, format="json")
    assert again.status_code == 400 and "name" in again.json()
