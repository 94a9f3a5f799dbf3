"""The token endpoint's provider, application, signing key, scope mappings and application bindings are cached per
process under the configuration stamp (core/oidc/client.py provider_for, core/system/stamp.py): every change of
them, through the ORM, the REST API or the admin, takes effect on the very next request. Attacks first: a changed
secret, a deleted or detached provider, a deny binding, a removed scope; then that the cache is used at all."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.accounts.models import Application, Group, User
from core.oidc.claims import mappings
from core.oidc.client import PROVIDERS, provider_for
from core.policies.models import ExpressionPolicy, PolicyBinding
from core.system import stamp
from core.system.models import ConfigStamp
from tests.api.conftest import api_token, bearer
from tests.oidc.helpers import token_request

pytestmark = pytest.mark.django_db
CC = {"grant_type": "client_credentials", "scope": "openid profile"}


@pytest.fixture
def provider(make_provider):
    stamp.bump()  # the row is there whatever an earlier test's flush did
    return make_provider("cache")


def _token(provider, secret: str | None = None, **data):
    return token_request(Client(), provider, {**CC, **data}, secret=secret)


def _refused(answer) -> bool:
    """authlib's invalid_client: 401 with Basic credentials, 400 with client_secret_post (RFC 6749 section 5.2)."""
    return answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client"


def test_a_changed_secret_is_refused_on_the_next_request(provider):
    old = provider.client_secret
    assert _token(provider).status_code == 200
    assert _token(provider).status_code == 200  # cached now
    provider.client_secret = "cache-new-secret-" + "n" * 40
    provider.save()
    assert _refused(_token(provider, secret=old))
    assert _token(provider).status_code == 200


def test_a_deleted_provider_or_application_is_no_client_on_the_next_request(provider, make_provider):
    assert _token(provider).status_code == 200
    Application.objects.filter(provider=provider).delete()
    assert _refused(_token(provider))
    other = make_provider("cache2")
    assert _token(other).status_code == 200
    other.delete()
    assert _refused(_token(other))


def test_a_public_client_made_of_a_confidential_one_gets_no_client_credentials_token(provider):
    assert _token(provider).status_code == 200
    provider.client_type = "public"
    provider.save(update_fields=["client_type"])
    assert _token(provider).status_code in (400, 401)


def test_a_deny_binding_and_a_removed_scope_apply_on_the_next_request(provider, blueprints):
    assert _token(provider).json()["scope"] == "openid profile"
    provider.property_mappings.remove(blueprints["profile"])  # an m2m change: no save of the provider
    assert _token(provider).json()["scope"] == "openid"
    deny = ExpressionPolicy.objects.create(name="deny all", expression="return False")
    binding = PolicyBinding.objects.create(target=provider.application, policy=deny, order=0)
    assert _token(provider).status_code == 403
    deny.expression = "return True"
    deny.save()
    assert _token(provider).status_code == 200
    binding.delete()
    group = Group.objects.create(name="nobody")
    PolicyBinding.objects.create(target=provider.application, group=group, order=0)
    assert _token(provider).status_code == 403


def test_a_change_through_the_api_and_the_admin_is_seen_by_the_next_token_request(provider):
    admin = User.objects.create_user("akadmin", "admin@example.com", "pw")
    admin.groups.add(Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})[0])
    old = provider.client_secret
    assert _token(provider).status_code == 200
    api = bearer(api_token(admin, "cache-admin-token"))
    answer = api.patch(f"/api/v3/providers/oauth2/{provider.pk}/", {"client_secret": "via-api-" + "a" * 40},
                       format="json")
    assert answer.status_code == 200, answer.content
    assert _refused(_token(provider, secret=old))
    assert _token(provider, secret="via-api-" + "a" * 40).status_code == 200
    browser = Client()
    browser.force_login(admin)
    page = f"/if/admin/authentik_providers_oauth2/oauth2provider/{provider.pk}/change/"
    form = browser.get(page).context["adminform"].form
    data = {}
    for field in form:  # the form as the browser would send it back, with a new secret
        value = field.field.prepare_value(field.value())
        if value is None or value is False:
            continue
        data[field.html_name] = "on" if value is True else value
    data.update({"client_secret": "via-admin-" + "b" * 40, "_save": "Save"})
    saved = browser.post(page, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved.content
    assert _refused(_token(provider, secret="via-api-" + "a" * 40))
    assert _token(provider, secret="via-admin-" + "b" * 40).status_code == 200


def test_a_rolled_back_change_leaves_a_usable_cache_and_a_restored_stamp_is_not_trusted_blindly(provider):
    """The stamp is random: a database whose stamp row went away (a flush) caches nothing, and a new row is a new
    value, never one an entry was made under."""
    assert _token(provider).status_code == 200
    ConfigStamp.objects.all().delete()  # no row: nothing may be cached
    assert stamp.current(stamp.alias()) is None
    provider.client_secret = "no-stamp-" + "c" * 40
    provider.save()  # writes a new stamp row
    assert stamp.current(stamp.alias()) is not None
    assert _token(provider, secret="no-stamp-" + "c" * 40).status_code == 200


def test_the_cached_provider_is_a_copy_per_request_and_costs_one_query(provider):
    PROVIDERS.entries.clear()
    first = provider_for(provider.client_id)
    first.client_secret = "changed-in-a-request"  # e.g. a scope mapping setting attributes on ``provider``
    first.application.name = "changed too"
    with CaptureQueriesContext(connection) as queries:
        second = provider_for(provider.client_id)
    assert len(queries) == 1 and "configstamp" in queries[0]["sql"].lower()
    assert second.client_secret == provider.client_secret and second.application.name == "Cache"
    with CaptureQueriesContext(connection) as queries:
        scopes = {m.scope_name for m in mappings(second)}
    assert scopes == {"openid", "profile", "email", "offline_access"} and not queries


def test_a_token_request_stays_within_its_queries(provider):
    assert _token(provider).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _token(provider).status_code == 200
    # the stamp, the service account, its groups (the profile mapping), the token row and the event (+ BEGIN/COMMIT;
    # the base URL setting is read from the cache outside a test's transaction: core/system/base_url.py)
    statements = [q["sql"] for q in queries if q["sql"] not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")
                  and not q["sql"].startswith(("SAVEPOINT", "RELEASE")) and "systemsettings" not in q["sql"]]
    assert len(statements) <= 5, statements
