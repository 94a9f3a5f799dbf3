"""The audit log records who changed what through the API, from where and when (core/events/audit.py)."""

import json

import pytest
from django.test import Client

from core.accounts.models import Group, User
from core.events.models import Event

from .conftest import bearer

pytestmark = pytest.mark.django_db

MODEL_ACTIONS = ("model_created", "model_updated", "model_deleted")


def model_events(**filters):
    return list(Event.objects.filter(action__in=MODEL_ACTIONS, **filters).order_by("created"))


def test_create_update_delete_name_the_actor_the_address_and_the_object(admin, admin_user):
    created = admin.post("/api/v3/core/users/", {"username": "bob", "email": "bob@example.com"}, format="json",
                         REMOTE_ADDR="192.0.2.7")
    assert created.status_code == 201, created.content
    pk = created.json()["pk"]
    admin.patch(f"/api/v3/core/users/{pk}/", {"name": "Bob"}, format="json")
    admin.delete(f"/api/v3/core/users/{pk}/")

    events = model_events(context__model__model_name="user", context__model__pk=pk)
    assert [e.action for e in events] == ["model_created", "model_updated", "model_deleted"]
    first = events[0]
    assert first.user == {"pk": admin_user.pk, "username": "akadmin", "email": "admin@example.com"}
    assert first.client_ip == "192.0.2.7"
    assert first.context["model"] == {"app": "authentik_core", "model_name": "user", "pk": pk, "name": "bob"}


def test_membership_changes_are_recorded_on_the_object(admin):
    group = Group.objects.create(name="media")
    bob = User.objects.create_user("bob")
    assert admin.patch(f"/api/v3/core/users/{bob.pk}/", {"groups": [str(group.pk)]},
                       format="json").status_code == 200
    relation = [e.context["relation"] for e in model_events(context__model__pk=bob.pk) if "relation" in e.context]
    assert {"field": "groups", "action": "add", "model": "authentik_core.group", "pks": [str(group.pk)]} in relation
    Event.objects.all().delete()
    assert admin.delete(f"/api/v3/core/users/{bob.pk}/").status_code == 204
    assert [(e.action, e.context["model"]["model_name"]) for e in model_events()] == [("model_deleted", "user")]


def test_the_events_api_finds_an_objects_history(admin):
    app = admin.post("/api/v3/core/applications/", {"name": "Grafana", "slug": "grafana"}, format="json")
    assert app.status_code == 201, app.content
    found = admin.get("/api/v3/events/events/", {"action": "model_created", "context_model_pk": app.json()["pk"]})
    assert found.status_code == 200
    (event,) = found.json()["results"]
    assert event["context"]["model"]["name"] == "Grafana" and event["user"]["username"] == "akadmin"


def test_a_token_event_never_carries_the_key(admin):
    made = admin.post("/api/v3/core/tokens/", {"identifier": "ci-token", "intent": "api"}, format="json")
    assert made.status_code == 201, made.content
    key = made.json()["key"]
    assert len(key) >= 32
    (event,) = model_events(context__model__model_name="token")
    assert event.context["model"]["name"] == "ci-token" and event.client_ip == "127.0.0.1"
    dumped = json.dumps([[e.user, e.context] for e in Event.objects.all()])
    assert key not in dumped


def test_a_failed_change_leaves_no_event(admin):
    assert admin.post("/api/v3/core/users/", {"username": ""}, format="json").status_code == 400
    assert model_events() == []


def test_changes_outside_a_request_are_not_model_events(db):
    user = User.objects.create_user("cli-made")
    user.name = "changed"
    user.save()
    user.delete()
    assert model_events() == []


def test_a_login_is_one_login_event_not_model_events(admin_user):
    client = Client()
    assert client.login(username="akadmin", password="pw")
    assert model_events() == []


def test_refused_writes_leave_no_model_event(alice_api):
    assert alice_api.post("/api/v3/core/groups/", {"name": "mine"}, format="json").status_code == 403
    assert bearer("not-a-token").post("/api/v3/core/groups/", {"name": "x"}, format="json").status_code in (401, 403)
    assert model_events() == []


def test_an_unprivileged_caller_is_named(alice_api, alice):
    made = alice_api.post("/api/v3/core/tokens/", {"identifier": "alice-cli", "intent": "api"}, format="json")
    assert made.status_code == 201, made.content
    (event,) = model_events()
    assert event.user["username"] == "alice" and event.context["model"]["name"] == "alice-cli"


def test_deleting_a_subclass_row_is_one_event(admin, flow):
    made = admin.post("/api/v3/providers/proxy/", {"name": "p", "external_host": "https://p.example.com",
                                                    "authorization_flow": str(flow.pk), "mode": "forward_single"},
                      format="json")
    assert made.status_code == 201, made.content
    app = admin.post("/api/v3/core/applications/", {"name": "P", "slug": "p", "provider": made.json()["pk"]},
                     format="json")
    assert app.status_code == 201, app.content
    assert admin.delete(f"/api/v3/providers/proxy/{made.json()['pk']}/").status_code == 204
    assert admin.delete("/api/v3/core/applications/p/").status_code == 204
    deleted = [(e.context["model"]["model_name"]) for e in model_events(action="model_deleted")]
    assert sorted(deleted) == ["application", "proxyprovider"], deleted
