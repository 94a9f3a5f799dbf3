"""``check_access`` of LDAP and RADIUS providers answers only the outpost that uses the provider (issue 8 item 11).

Attack: any signed-in user asked ``/api/v3/outposts/{ldap,radius}/<pk>/check_access/`` for pk 1, 2, 3... and learnt
the providers' names from the answers ("no application 'x' uses provider 'Corp LDAP'"). Now the endpoint answers
only an outpost's own service account: authentik's outposts send their token in ``X-authentik-outpost-token``
beside the user's session (their flow-executor client adds it to every request). Anyone else gets 403 whatever the
pk, and an outpost asking about a provider that is not attached to it gets 404.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.accounts.models import Group

from .conftest import bearer

pytestmark = pytest.mark.django_db

KINDS = ("ldap", "radius")


def as_outpost(client: APIClient, key: str) -> APIClient:
    client.credentials(HTTP_X_AUTHENTIK_OUTPOST_TOKEN=key)
    return client


def url(kind: str, pk, slug: str | None = None) -> str:
    query = f"?app_slug={slug or kind + '-app'}"
    return f"/api/v3/outposts/{kind}/{pk}/check_access/{query}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_signed_in_user_learns_nothing(world, alice, kind):
    client = APIClient()
    client.force_login(alice)
    provider = world[kind]
    for target in (url(kind, provider.pk), url(kind, provider.pk, "whoami"), url(kind, 99999)):
        response = client.get(target)
        assert response.status_code == 403, (target, response.content)
        assert repr(provider.name) not in response.content.decode()
        assert "X-authentik-outpost-token" in response.json()["detail"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_superuser_without_the_outpost_token_is_refused_too(world, admin_user, kind):
    client = APIClient()
    client.force_login(admin_user)
    assert client.get(url(kind, world[kind].pk)).status_code == 403


@pytest.mark.parametrize("kind", KINDS)
def test_a_user_token_in_the_outpost_header_is_refused(world, alice, kind):
    from .conftest import api_token

    client = as_outpost(APIClient(), api_token(alice, "alice-token"))
    client.force_login(alice)
    assert client.get(url(kind, world[kind].pk)).status_code == 403


@pytest.mark.parametrize("kind", KINDS)
def test_the_outpost_of_the_provider_gets_the_users_answer(world, alice, kind):
    client = as_outpost(APIClient(), world["keys"][f"{kind}-outpost"])
    client.force_login(alice)  # the user's session, as after the outpost ran the flow for them
    body = client.get(url(kind, world[kind].pk)).json()
    assert body["access"] == {"passing": True, "messages": [], "log_messages": []}
    from core.policies.models import PolicyBinding

    PolicyBinding.objects.create(target=world[kind].application, group=Group.objects.create(name="staff"), order=0)
    assert client.get(url(kind, world[kind].pk)).json()["access"]["passing"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_another_outpost_cannot_ask_about_the_provider(world, alice, kind):
    other = "radius-outpost" if kind == "ldap" else "ldap-outpost"
    for key in (world["keys"][other], world["keys"]["proxy-outpost"]):
        client = as_outpost(APIClient(), key)
        client.force_login(alice)
        response = client.get(url(kind, world[kind].pk))
        assert response.status_code == 404 and repr(world[kind].name) not in response.content.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_the_outpost_itself_with_its_bearer_token(world, kind):
    """The service account asking about itself: answered (and refused: it is not a person)."""
    response = bearer(world["keys"][f"{kind}-outpost"]).get(url(kind, world[kind].pk))
    assert response.status_code == 200 and response.json()["access"]["passing"] is False


def test_ldap_search_permission_for_a_superuser_through_the_outpost(world, admin_user):
    client = as_outpost(APIClient(), world["keys"]["ldap-outpost"])
    client.force_login(admin_user)
    assert client.get(url("ldap", world["ldap"].pk)).json()["has_search_permission"] is True


def test_without_a_user_it_asks_to_authenticate(world):
    """The header names the asking outpost; it authenticates nobody (there is no user to answer about)."""
    assert as_outpost(APIClient(), world["keys"]["ldap-outpost"]).get(url("ldap", world["ldap"].pk)).status_code \
        == 401
    assert APIClient().get(url("ldap", world["ldap"].pk)).status_code == 401
