"""Issue 12 item 5: every admin page, the custom ones included, needs the superuser session; a POST without the
CSRF token is refused even for a superuser."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from core.accounts.models import Token, TokenIntents, User
from core.outposts.models import Outpost

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(admin_client) -> list[str]:
    pat = User.objects.get(username="root")
    token = Token(identifier="root-api", intent=TokenIntents.INTENT_API, user=pat)
    token.set_key()
    token.save()
    outpost = Outpost.objects.create(name="remote", type="proxy")
    return ["/if/admin/", "/if/admin/authentik_outposts/outpost/add/",
            f"/if/admin/authentik_outposts/outpost/{outpost.pk}/change/",
            f"/if/admin/authentik_outposts/outpost/{outpost.pk}/deployment/",
            "/if/admin/authentik_core/group/add/", f"/if/admin/authentik_core/token/{token.pk}/key/",
            "/if/admin/authentik_core/token/add/", "/if/admin/authentik_events/event/",
            "/if/admin/authentik_admin/systemsettings/test-mail/", "/if/admin/authentik_crypto/certificatekeypair/add/",
            "/if/admin/authentik_blueprints/blueprintinstance/", f"/if/admin/authentik_core/token/{uuid.uuid4()}/key/"]


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_every_page_needs_a_superuser(urls, who):
    client = Client()
    if who == "user":
        client.force_login(User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1"))
    for url in urls:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code in (302, 403), (url, method, response.status_code)
            if response.status_code == 302:
                assert "/if/flow/" in response["Location"] or "/login/" in response["Location"], url


def test_a_post_without_the_csrf_token_is_refused(urls):
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(username="root"))
    for url in urls:
        assert client.post(url, {"name": "x"}).status_code == 403, url
