"""CRUD of the remaining resources through their authentik paths."""

import pytest
from django.db.models.signals import post_save
from rest_framework.test import APIClient

from core.accounts.models import AuthenticatedSession
from core.events.record import record
from core.flows.models import FlowStageBinding, PasswordStage
from core.oidc.models import ScopeMapping
from core.policies.models import ExpressionPolicy, PolicyBinding
from core.providers.proxy.models import ProxyProvider

pytestmark = pytest.mark.django_db


def test_application_crud(admin, world):
    resp = admin.post("/api/v3/core/applications/", {"name": "Grafana", "slug": "grafana",
                                                     "provider": world["orphan"].pk}, format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["provider_obj"]["name"] == "orphan" and body["launch_url"] == "https://orphan.example.com"
    taken = admin.post("/api/v3/core/applications/", {"name": "X", "slug": "x", "provider": world["orphan"].pk},
                       format="json")
    assert taken.status_code == 400 and "provider" in taken.json()
    evil = admin.patch("/api/v3/core/applications/grafana/", {"meta_launch_url": "javascript:alert(1)"},
                       format="json")
    assert evil.status_code == 400 and "meta_launch_url" in evil.json()
    assert admin.get("/api/v3/core/applications/?search=graf").json()["results"][0]["slug"] == "grafana"
    assert admin.delete("/api/v3/core/applications/grafana/").status_code == 204


def test_proxy_provider_crud_sets_defaults_and_fires_signals(admin, flow):
    ScopeMapping.objects.create(name="openid", scope_name="openid",
                                managed="goauthentik.io/providers/oauth2/scope-openid")
    ScopeMapping.objects.create(name="proxy", scope_name="ak_proxy",
                                managed="goauthentik.io/providers/proxy/scope-proxy")
    saved = []

    def on_save(sender, instance, **kwargs):
        saved.append(instance.name)

    post_save.connect(on_save, sender=ProxyProvider)
    try:
        resp = admin.post("/api/v3/providers/proxy/", {
            "name": "app", "external_host": "https://app.example.com", "internal_host": "http://app:8080",
            "authorization_flow": str(flow.pk), "mode": "proxy"}, format="json")
        assert resp.status_code == 201, resp.content
        pk = resp.json()["pk"]
        assert admin.patch(f"/api/v3/providers/proxy/{pk}/", {"skip_path_regex": "^/public/.*"},
                           format="json").status_code == 200
    finally:
        post_save.disconnect(on_save, sender=ProxyProvider)
    assert saved == ["app", "app"]  # model save() ran, so outposts get their refresh push
    body = admin.get(f"/api/v3/providers/proxy/{pk}/").json()
    assert body["redirect_uris"][0]["url"] == \
        "https://app.example.com/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"
    assert sorted(ProxyProvider.objects.get(pk=pk).property_mappings.values_list("name", flat=True)) == \
        ["openid", "proxy"]
    for payload, field in (({"external_host": "app.example.com"}, "external_host"),
                           ({"skip_path_regex": "^(unclosed"}, "skip_path_regex"),
                           ({"internal_host": "", "mode": "proxy"}, "internal_host"),
                           ({"mode": "forward_domain", "cookie_domain": ""}, "cookie_domain"),
                           ({"access_token_validity": "forever"}, "access_token_validity")):
        resp = admin.patch(f"/api/v3/providers/proxy/{pk}/", payload, format="json")
        assert resp.status_code == 400 and field in resp.json(), (payload, resp.content)
    all_providers = admin.get("/api/v3/providers/all/").json()["results"]
    assert [(p["name"], p["meta_model_name"]) for p in all_providers] == \
        [("app", "authentik_providers_proxy.proxyprovider")]
    assert admin.delete(f"/api/v3/providers/all/{pk}/").status_code == 204
    assert not ProxyProvider.objects.filter(pk=pk).exists()


def test_oauth2_ldap_radius_providers(admin, flow):
    resp = admin.post("/api/v3/providers/oauth2/", {
        "name": "grafana", "authorization_flow": str(flow.pk),
        "redirect_uris": [{"matching_mode": "strict", "url": "https://grafana.example.com/login/generic_oauth"}]},
        format="json")
    assert resp.status_code == 201, resp.content
    assert resp.json()["client_id"] and resp.json()["client_secret"]
    bad = admin.post("/api/v3/providers/oauth2/", {"name": "bad", "redirect_uris": [{"matching_mode": "regex",
                                                                                     "url": "("}]}, format="json")
    assert bad.status_code == 400 and "redirect_uris" in bad.json()
    ldap = admin.post("/api/v3/providers/ldap/", {"name": "ldap", "base_dn": "DC=example,DC=com",
                                                  "authorization_flow": str(flow.pk)}, format="json")
    assert ldap.status_code == 201 and ldap.json()["search_mode"] == "direct"
    bad = admin.post("/api/v3/providers/ldap/", {"name": "l2", "base_dn": "example"}, format="json")
    assert bad.status_code == 400 and "base_dn" in bad.json()
    radius = admin.post("/api/v3/providers/radius/", {"name": "radius", "client_networks": "10.0.0.0/8",
                                                      "authorization_flow": str(flow.pk)}, format="json")
    assert radius.status_code == 201 and radius.json()["shared_secret"]
    bad = admin.post("/api/v3/providers/radius/", {"name": "r2", "client_networks": "10.0.0.0/33"}, format="json")
    assert bad.status_code == 400 and "client_networks" in bad.json()
    assert admin.get("/api/v3/providers/oauth2/").json()["pagination"]["count"] == 1


def test_scope_mappings(admin):
    resp = admin.post("/api/v3/propertymappings/provider/scope/", {
        "name": "groups", "scope_name": "groups", "expression": "return {'groups': []}"}, format="json")
    assert resp.status_code == 201, resp.content
    bad = admin.post("/api/v3/propertymappings/provider/scope/", {
        "name": "bad", "scope_name": "bad", "expression": "return {"}, format="json")
    assert bad.status_code == 400 and "expression" in bad.json()
    assert admin.get("/api/v3/propertymappings/provider/scope/?scope_name=groups").json()["pagination"]["count"] == 1
    assert admin.delete(f"/api/v3/propertymappings/provider/scope/{resp.json()['pk']}/").status_code == 204


def test_policies_and_bindings(admin, world, alice):
    expr = admin.post("/api/v3/policies/expression/", {"name": "p", "expression": "return True"}, format="json")
    assert expr.status_code == 201, expr.content
    assert admin.post("/api/v3/policies/expression/", {"name": "q", "expression": "if"},
                      format="json").status_code == 400
    pw = admin.post("/api/v3/policies/password/", {"name": "pw", "length_min": 12}, format="json")
    assert pw.status_code == 201 and pw.json()["length_min"] == 12
    rep = admin.post("/api/v3/policies/reputation/", {"name": "rep", "threshold": -3}, format="json")
    assert rep.status_code == 201
    assert [p["name"] for p in admin.get("/api/v3/policies/all/").json()["results"]] == ["p", "pw", "rep"]
    app = world["mine"].application
    binding = admin.post("/api/v3/policies/bindings/", {"target": str(app.pk), "policy": expr.json()["pk"],
                                                        "order": 0}, format="json")
    assert binding.status_code == 201, binding.content
    assert binding.json()["policy_obj"]["name"] == "p"
    both = admin.post("/api/v3/policies/bindings/", {"target": str(app.pk), "policy": expr.json()["pk"],
                                                     "user": alice.pk, "order": 1}, format="json")
    assert both.status_code == 400 and "user" in both.json()
    none = admin.post("/api/v3/policies/bindings/", {"target": str(app.pk), "order": 1}, format="json")
    assert none.status_code == 400 and "policy" in none.json()
    assert admin.get(f"/api/v3/policies/bindings/?target={app.pk}").json()["pagination"]["count"] == 1
    assert admin.delete(f"/api/v3/policies/bindings/{binding.json()['pk']}/").status_code == 204
    assert not PolicyBinding.objects.exists()
    assert admin.delete(f"/api/v3/policies/all/{expr.json()['pk']}/").status_code == 204
    assert not ExpressionPolicy.objects.exists()


def test_flows_bindings_stages(admin, flow):
    resp = admin.post("/api/v3/flows/instances/", {"name": "Enroll", "slug": "enroll", "designation": "enrollment",
                                                   "title": "Sign up"}, format="json")
    assert resp.status_code == 201, resp.content
    bad = admin.post("/api/v3/flows/instances/", {"name": "x", "slug": "x", "designation": "nope"}, format="json")
    assert bad.status_code == 400 and "designation" in bad.json()
    stage = PasswordStage.objects.create(name="password")
    binding = admin.post("/api/v3/flows/bindings/", {"target": str(flow.pk), "stage": str(stage.pk), "order": 10},
                         format="json")
    assert binding.status_code == 201, binding.content
    assert binding.json()["stage_obj"]["component"] == "ak-stage-password-form"
    stages = admin.get("/api/v3/stages/all/").json()["results"]
    assert stages[0]["name"] == "password" and stages[0]["flow_set"][0]["slug"] == "auth-flow"
    assert admin.get("/api/v3/flows/bindings/?target=" + str(flow.pk)).json()["pagination"]["count"] == 1
    assert admin.get("/api/v3/flows/instances/auth-flow/").json()["stages"] == [str(stage.pk)]
    assert admin.delete("/api/v3/stages/all/" + str(stage.pk) + "/").status_code == 204
    assert not FlowStageBinding.objects.exists()
    assert admin.delete("/api/v3/flows/instances/enroll/").status_code == 204


def test_sessions_own_only_and_revoke(alice, admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    mine, _ = AuthenticatedSession.objects.get_or_create(session_key=client.session.session_key,
                                                         defaults={"user": alice})
    other = AuthenticatedSession.objects.create(session_key="other-session", user=alice, last_ip="10.1.1.1")
    theirs = AuthenticatedSession.objects.create(session_key="admins-session", user=admin_user)
    listed = client.get("/api/v3/core/authenticated_sessions/").json()["results"]
    assert sorted(s["uuid"] for s in listed) == sorted([str(mine.uuid), str(other.uuid)])
    assert [s["current"] for s in listed if s["uuid"] == str(mine.uuid)] == [True]
    assert APIClient().delete(f"/api/v3/core/authenticated_sessions/{theirs.uuid}/").status_code == 401
    resp = client.delete(f"/api/v3/core/authenticated_sessions/{other.uuid}/", HTTP_X_CSRFTOKEN="x")
    # session auth enforces CSRF on unsafe methods
    assert resp.status_code == 403
    assert "CSRF" in resp.json()["detail"]
    csrf_client = APIClient()
    csrf_client.force_login(alice)
    assert csrf_client.delete(f"/api/v3/core/authenticated_sessions/{other.uuid}/").status_code == 204
    assert not AuthenticatedSession.objects.filter(pk=other.pk).exists()
    assert csrf_client.delete(f"/api/v3/core/authenticated_sessions/{theirs.uuid}/").status_code == 404


def test_events_list_and_filters(admin):
    record("login", client_ip="10.0.0.1", app="core")
    record("login_failed", client_ip="10.0.0.2", app="core", username="eve")
    assert admin.get("/api/v3/events/events/?action=login").json()["pagination"]["count"] == 1
    assert admin.get("/api/v3/events/events/?client_ip=10.0.0.2").json()["results"][0]["action"] == "login_failed"
    resp = admin.post("/api/v3/events/events/", {"action": "custom_", "app": "ops", "context": {"x": 1}},
                      format="json")
    assert resp.status_code == 201
