"""What an outpost's token sees: its own outpost, its providers' configs (authentik field names), health,
events; and check_access as the end user."""

import uuid

import pytest
from rest_framework.test import APIClient

from core.accounts.models import Group, User
from core.events.models import Event
from core.outposts.models import Outpost
from core.outposts.state import delete_state, list_states, record_state
from core.policies.models import PolicyBinding

from .conftest import bearer

pytestmark = pytest.mark.django_db

PROXY_FIELDS = {"pk", "name", "internal_host", "external_host", "internal_host_ssl_validation", "client_id",
                "client_secret", "oidc_configuration", "cookie_secret", "certificate", "skip_path_regex",
                "basic_auth_enabled", "basic_auth_password_attribute", "basic_auth_user_attribute", "mode",
                "cookie_domain", "access_token_validity", "intercept_header_auth", "scopes_to_request",
                "assigned_application_slug", "assigned_application_name", "access"}
LDAP_FIELDS = {"pk", "name", "base_dn", "bind_flow_slug", "unbind_flow_slug", "application_slug", "certificate",
               "tls_server_name", "uid_start_number", "gid_start_number", "search_mode", "bind_mode", "mfa_support"}
RADIUS_FIELDS = {"pk", "name", "application_slug", "auth_flow_slug", "client_networks", "shared_secret",
                 "mfa_support", "certificate"}


def test_outpost_sees_only_its_own_outpost(world):
    client = bearer(world["keys"]["proxy-outpost"])
    body = client.get("/api/v3/outposts/instances/").json()
    assert [o["name"] for o in body["results"]] == ["proxy-outpost"]
    outpost = body["results"][0]
    assert {"pk", "name", "type", "providers", "providers_obj", "config", "managed", "token_identifier",
            "refresh_interval_s"} <= set(outpost)
    assert outpost["refresh_interval_s"] == 300 and outpost["type"] == "proxy"
    assert outpost["token_identifier"] == world["proxy_outpost"].token_identifier
    assert sorted(p["name"] for p in outpost["providers_obj"]) == ["orphan", "whoami"]
    other = world["other_outpost"]
    assert client.get(f"/api/v3/outposts/instances/{other.pk}/").status_code == 404
    assert client.delete(f"/api/v3/outposts/instances/{world['proxy_outpost'].pk}/").status_code == 403
    assert client.patch(f"/api/v3/outposts/instances/{world['proxy_outpost'].pk}/", {"name": "x"},
                        format="json").status_code == 403


def test_proxy_config_only_own_providers_with_authentik_fields(world):
    client = bearer(world["keys"]["proxy-outpost"])
    body = client.get("/api/v3/outposts/proxy/?page=1&page_size=100").json()
    assert [p["name"] for p in body["results"]] == ["whoami"]  # orphan has no application
    config = body["results"][0]
    assert set(config) == PROXY_FIELDS
    mine = world["mine"]
    assert config["client_id"] == mine.client_id and config["cookie_secret"] == mine.cookie_secret
    assert config["mode"] == "forward_single" and config["access_token_validity"] == 3600.0
    assert config["assigned_application_slug"] == "whoami" and config["assigned_application_name"] == "Who Am I"
    assert config["oidc_configuration"]["issuer"] == "http://testserver/application/o/whoami/"
    assert config["oidc_configuration"]["authorization_endpoint"] == "http://testserver/application/o/authorize/"
    assert config["certificate"] is None
    assert client.get(f"/api/v3/outposts/proxy/{world['other'].pk}/").status_code == 404
    assert bearer(world["keys"]["other-outpost"]).get("/api/v3/outposts/proxy/").json()["results"][0]["name"] == \
        "other"


def test_ldap_and_radius_configs(world):
    ldap = bearer(world["keys"]["ldap-outpost"]).get("/api/v3/outposts/ldap/").json()["results"]
    assert len(ldap) == 1 and LDAP_FIELDS <= set(ldap[0])
    assert ldap[0]["bind_flow_slug"] == "auth-flow" and ldap[0]["application_slug"] == "ldap-app"
    assert ldap[0]["uid_start_number"] == 2000 and ldap[0]["gid_start_number"] == 4000
    radius = bearer(world["keys"]["radius-outpost"]).get("/api/v3/outposts/radius/").json()["results"]
    assert len(radius) == 1 and RADIUS_FIELDS <= set(radius[0])
    assert radius[0]["shared_secret"] == "s3cret" and radius[0]["auth_flow_slug"] == "auth-flow"
    assert radius[0]["bind_mode"] == "direct" and radius[0]["require_message_authenticator"] is True  # Gatehouse's
    # A proxy outpost reads no LDAP/RADIUS secrets.
    proxy = bearer(world["keys"]["proxy-outpost"])
    assert proxy.get("/api/v3/outposts/radius/").json()["results"] == []
    assert proxy.get("/api/v3/outposts/ldap/").json()["results"] == []


def test_outpost_permissions_elsewhere(world, alice):
    proxy = bearer(world["keys"]["proxy-outpost"])
    ldap = bearer(world["keys"]["ldap-outpost"])
    assert proxy.get("/api/v3/core/users/").status_code == 403
    users = ldap.get("/api/v3/core/users/?include_groups=true").json()["results"]
    assert "alice" in [u["username"] for u in users]
    assert ldap.get("/api/v3/core/groups/").status_code == 200
    assert ldap.post("/api/v3/core/groups/", {"name": "x"}, format="json").status_code == 403
    assert proxy.get("/api/v3/core/tokens/").status_code == 403
    assert proxy.get("/api/v3/providers/proxy/").status_code == 403
    assert proxy.get("/api/v3/root/config/").status_code == 200


def test_outpost_posts_configuration_error(world):
    proxy = bearer(world["keys"]["proxy-outpost"])
    resp = proxy.post("/api/v3/events/events/", {
        "action": "configuration_error", "app": "authentik.providers.proxy", "client_ip": "10.0.0.9",
        "context": {"message": "missing X-Forwarded-Host"}, "user": {"username": "forged"}}, format="json")
    assert resp.status_code == 201, resp.content
    event = Event.objects.get(action="configuration_error")
    assert event.user["username"] == world["proxy_outpost"].service_account_name  # cannot be forged
    assert event.client_ip == "10.0.0.9"
    forged = proxy.post("/api/v3/events/events/", {"action": "login", "app": "x"}, format="json")
    assert forged.status_code == 400 and "action" in forged.json()
    assert proxy.get("/api/v3/events/events/").status_code == 403


def test_health_lists_cached_states(world, admin):
    outpost = world["proxy_outpost"]
    instance = str(uuid.uuid4())
    record_state(outpost, instance, {"version": "2025.10.0", "buildHash": "abc", "hostname": "pod-1",
                                     "uuid": instance, "golangVersion": "go1.24", "extra": 1})
    states = bearer(world["keys"]["proxy-outpost"]).get(f"/api/v3/outposts/instances/{outpost.pk}/health/").json()
    assert len(states) == 1
    assert states[0]["uid"] == instance and states[0]["version"] == "2025.10.0"
    assert states[0]["hostname"] == "pod-1" and states[0]["build_hash"] == "abc"
    assert states[0]["args"] == {"extra": 1}
    assert admin.get(f"/api/v3/outposts/instances/{world['other_outpost'].pk}/health/").json() == []
    delete_state(outpost, instance)
    assert list_states(outpost) == []


def test_refresh_interval_parsing_and_validation(admin, world):
    outpost = world["proxy_outpost"]
    url = f"/api/v3/outposts/instances/{outpost.pk}/"
    for text, expected in (("seconds=5", 30), ("hours=1", 3600), ("seconds=0", 300)):
        resp = admin.patch(url, {"config": {**outpost.config, "refresh_interval": text}}, format="json")
        assert resp.status_code == 200 and resp.json()["refresh_interval_s"] == expected
    bad = admin.patch(url, {"config": {"refresh_interval": "fortnights=1"}}, format="json")
    assert bad.status_code == 400 and "refresh_interval" in bad.json()["config"][0]


def test_outpost_crud_and_type_check(admin, world):
    resp = admin.post("/api/v3/outposts/instances/", {"name": "new", "type": "ldap",
                                                      "providers": [world["mine"].pk]}, format="json")
    assert resp.status_code == 400 and "providers" in resp.json()
    resp = admin.post("/api/v3/outposts/instances/", {"name": "new", "type": "ldap",
                                                      "providers": [world["ldap"].pk]}, format="json")
    assert resp.status_code == 201, resp.content
    pk = resp.json()["pk"]
    outpost = Outpost.objects.get(pk=pk)
    assert User.objects.filter(username=outpost.service_account_name).exists()  # service account made
    key = admin.get(f"/api/v3/core/tokens/{outpost.token_identifier}/view_key/").json()["key"]
    assert bearer(key).get("/api/v3/outposts/instances/").json()["results"][0]["pk"] == pk
    assert admin.delete(f"/api/v3/outposts/instances/{pk}/").status_code == 204


def test_check_access_as_end_user(world, alice):
    """Asked by the provider's outpost (its token beside the user's session; tests/api/test_check_access.py)."""
    client = APIClient(HTTP_X_AUTHENTIK_OUTPOST_TOKEN=world["keys"]["ldap-outpost"])
    client.force_login(alice)
    ldap = world["ldap"]
    body = client.get(f"/api/v3/outposts/ldap/{ldap.pk}/check_access/?app_slug=ldap-app").json()
    assert body["access"]["passing"] is True and body["has_search_permission"] is False
    staff = Group.objects.create(name="ldap-users")
    PolicyBinding.objects.create(target=ldap.application, group=staff, order=0)
    body = client.get(f"/api/v3/outposts/ldap/{ldap.pk}/check_access/?app_slug=ldap-app").json()
    assert body["access"]["passing"] is False
    alice.groups.add(staff)
    body = client.get(f"/api/v3/outposts/ldap/{ldap.pk}/check_access/?app_slug=ldap-app").json()
    assert body["access"]["passing"] is True
    radius = world["radius"]
    client.credentials(HTTP_X_AUTHENTIK_OUTPOST_TOKEN=world["keys"]["radius-outpost"])
    body = client.get(f"/api/v3/outposts/radius/{radius.pk}/check_access/?app_slug=radius-app").json()
    assert body == {"access": {"passing": True, "messages": [], "log_messages": []}, "attributes": ""}
    # an app that does not use this provider, a missing slug, a missing provider
    client.credentials(HTTP_X_AUTHENTIK_OUTPOST_TOKEN=world["keys"]["ldap-outpost"])
    assert client.get(f"/api/v3/outposts/ldap/{ldap.pk}/check_access/?app_slug=whoami").status_code == 404
    missing = client.get(f"/api/v3/outposts/ldap/{ldap.pk}/check_access/")
    assert missing.status_code == 400 and "app_slug" in missing.json()
    assert client.get("/api/v3/outposts/ldap/99999/check_access/?app_slug=ldap-app").status_code == 404
    # but alice cannot read the configs
    assert client.get("/api/v3/outposts/ldap/").status_code == 403
    assert APIClient().get(f"/api/v3/outposts/ldap/{ldap.pk}/check_access/?app_slug=ldap-app").status_code == 401


def test_superuser_has_search_permission(world, admin_user):
    client = APIClient(HTTP_X_AUTHENTIK_OUTPOST_TOKEN=world["keys"]["ldap-outpost"])
    client.force_login(admin_user)
    body = client.get(f"/api/v3/outposts/ldap/{world['ldap'].pk}/check_access/?app_slug=ldap-app").json()
    assert body["has_search_permission"] is True


def test_check_access_uses_the_policy_engine(world, alice):
    from core.api.access import user_has_access
    from core.policies.models import ExpressionPolicy

    app = world["ldap"].application
    assert user_has_access(alice, app)[0] is True
    policy = ExpressionPolicy.objects.create(name="never", expression="return False")
    PolicyBinding.objects.create(target=app, policy=policy, order=0)
    assert user_has_access(alice, app)[0] is False
    PolicyBinding.objects.create(target=app, user=alice, order=1)
    assert user_has_access(alice, app)[0] is True  # mode "any"
    alice.is_active = False
    assert user_has_access(alice, app)[0] is False
