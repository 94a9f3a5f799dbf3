"""A proxy provider always carries authentik's default scope mappings (issue 8 item 2), whichever way it was
made: a blueprint written as authentik users write them (no ``property_mappings``), the REST API, the ORM
(``ak shell``, Django admin), a blueprint that lists its own mappings, scope mappings created after the
provider, and providers stored before this rule existed (the data migration).

Without them the outpost asks for no ``profile`` scope and the core's tokens carry no ``preferred_username``:
forward auth answered 200 with ``X-authentik-username: ''`` (tests/outpost/proxy/test_identity_required.py
shows the outpost now refuses such an identity; this file shows the core no longer produces one)."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.forms import modelform_factory

from core.blueprints.apply import BUILTIN_DIR, apply_file
from core.oidc.models import ScopeMapping
from core.providers.proxy.models import DEFAULT_SCOPE_MANAGED, ProxyProvider
from tests.blueprints.conftest import apply_text, watch_signals

pytestmark = pytest.mark.django_db

PREFIX = "goauthentik.io/providers/oauth2/scope-"
# What authentik's documentation and users' repositories write: mode, hosts, flows; no property_mappings.
USER_BLUEPRINT = """
version: 1
metadata: {name: whoami}
entries:
  - model: authentik_flows.flow
    id: authz
    identifiers: {slug: authz}
    attrs: {name: authz, title: authz, designation: authorization}
  - model: authentik_providers_proxy.proxyprovider
    id: provider
    identifiers: {name: whoami}
    attrs:
      mode: forward_single
      external_host: https://whoami.example.com
      authorization_flow: !KeyOf authz
  - model: authentik_core.application
    identifiers: {slug: whoami}
    attrs: {name: whoami, provider: !KeyOf provider}
"""


@pytest.fixture
def scopes():
    """The built-in scope mappings, as `ak migrate` / `ak server` create them."""
    for name in ("00-system-providers-oauth2.yaml", "00-system-providers-proxy.yaml"):
        apply_file(BUILTIN_DIR / name)
    return {m.managed: m for m in ScopeMapping.objects.filter(managed__in=DEFAULT_SCOPE_MANAGED)}


def managed(provider: ProxyProvider) -> set[str]:
    return set(ScopeMapping.objects.filter(provider=provider).values_list("managed", flat=True))


def scope_names(provider: ProxyProvider) -> set[str]:
    return set(ScopeMapping.objects.filter(provider=provider).values_list("scope_name", flat=True))


def test_the_defaults_are_authentiks(scopes):
    assert set(DEFAULT_SCOPE_MANAGED) == set(scopes)  # every default exists once the built-ins ran
    assert {m.scope_name for m in scopes.values()} == {"openid", "profile", "email", "entitlements", "ak_proxy"}


def test_blueprint_without_property_mappings_gets_the_defaults(scopes):
    apply_text(USER_BLUEPRINT)
    provider = ProxyProvider.objects.get(name="whoami")
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)
    assert {"openid", "profile", "email"} <= scope_names(provider)
    assert provider.client_type == "confidential" and provider.include_claims_in_id_token
    assert provider.redirect_uris[0]["url"] == \
        "https://whoami.example.com/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"
    with watch_signals() as fired:  # re-applying the same blueprint changes nothing
        result = apply_text(USER_BLUEPRINT)
    assert fired == [] and not result.changed, (fired, result.counts)


def test_blueprint_that_lists_its_own_mappings_keeps_them_and_the_defaults(scopes):
    """authentik's importer saves through the serializer, whose create()/update() add the defaults after the
    listed mappings are set: the union. Re-applying is a no-op (no signals, nothing "updated")."""
    text = USER_BLUEPRINT + """
  - model: authentik_providers_oauth2.scopemapping
    id: custom
    identifiers: {name: custom-host}
    attrs: {scope_name: ak_proxy, expression: "return {'ak_proxy': {'host_header': 'x'}}"}
  - model: authentik_providers_proxy.proxyprovider
    identifiers: {name: whoami}
    attrs: {property_mappings: [!KeyOf custom]}
"""
    apply_text(text)
    provider = ProxyProvider.objects.get(name="whoami")
    custom = ScopeMapping.objects.get(name="custom-host")
    assert set(provider.property_mappings.values_list("pk", flat=True)) == \
        {custom.pk, *(m.pk for m in scopes.values())}
    with watch_signals() as fired:
        result = apply_text(text)
    assert fired == [] and not result.changed, (fired, result.counts)


def test_orm_and_admin_form_paths(scopes):
    """``ak shell`` (the ORM) and the Django admin's form both end in save() and m2m set(): the defaults stay."""
    provider = ProxyProvider.objects.create(name="orm", external_host="https://orm.example.com")
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)
    provider.property_mappings.clear()
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)
    provider.property_mappings.set([])
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)
    provider.property_mappings.remove(scopes[PREFIX + "profile"])
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)
    scopes[PREFIX + "profile"].provider_set.clear()  # from the mapping's side
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)

    form_class = modelform_factory(ProxyProvider, fields=["name", "external_host", "mode", "cookie_secret",
                                                          "property_mappings"])
    form = form_class(data={"name": "admin-made", "external_host": "https://adm.example.com",
                            "mode": "forward_single", "cookie_secret": "s" * 32, "property_mappings": []})
    assert form.is_valid(), form.errors
    made = form.save()
    assert managed(made) == set(DEFAULT_SCOPE_MANAGED)


def test_api_with_explicit_property_mappings(scopes, admin):
    custom = ScopeMapping.objects.create(name="custom", scope_name="custom", expression="return {}")
    resp = admin.post("/api/v3/providers/proxy/", {
        "name": "api", "external_host": "https://api.example.com", "mode": "forward_single",
        "property_mappings": [str(custom.pk)]}, format="json")
    assert resp.status_code == 201, resp.content
    provider = ProxyProvider.objects.get(pk=resp.json()["pk"])
    assert managed(provider) == {*DEFAULT_SCOPE_MANAGED, None}
    resp = admin.patch(f"/api/v3/providers/proxy/{provider.pk}/", {"property_mappings": []}, format="json")
    assert resp.status_code == 200 and managed(provider) == set(DEFAULT_SCOPE_MANAGED)


def test_scope_mappings_made_after_the_provider_are_attached():
    """A provider created before the built-in scope mappings exist (a user blueprint applied to a fresh
    database before the built-ins): when a default mapping appears, every proxy provider gets it."""
    provider = ProxyProvider.objects.create(name="early", external_host="https://early.example.com")
    assert managed(provider) == set()
    for name in ("00-system-providers-oauth2.yaml", "00-system-providers-proxy.yaml"):
        apply_file(BUILTIN_DIR / name)
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)


def test_migration_gives_stored_providers_the_defaults(scopes):
    """Providers stored before this rule (an upgraded database) get the defaults from the data migration."""
    provider = ProxyProvider.objects.create(name="old", external_host="https://old.example.com")
    through = ProxyProvider.property_mappings.through
    through.objects.filter(provider_id=provider.pk).delete()  # as stored by an older version (no signals)
    assert managed(provider) == set()
    migration = importlib.import_module("core.providers.proxy.migrations.0002_default_scope_mappings")
    migration.add_default_scope_mappings(django_apps, None)
    assert managed(provider) == set(DEFAULT_SCOPE_MANAGED)


@pytest.fixture
def admin(db):
    from core.accounts.models import Group, User
    from tests.api.conftest import api_token, bearer

    user = User.objects.create_user("akadmin", "admin@example.com", "pw")
    user.groups.add(Group.objects.create(name="authentik Admins", is_superuser=True))
    return bearer(api_token(user, "admin-token"))
