"""Issue 12 item 3: "View deployment info" on the admin's outpost list: AUTHENTIK_HOST, the token shown on
demand (a secret_view event) and a docker compose service for ``ak outpost <type>``."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from core.accounts.models import Token, User
from core.events.models import Event
from core.outposts.models import Outpost

pytestmark = pytest.mark.django_db



def test_deployment_info_shows_host_then_token_on_demand(admin_client):
    outpost = Outpost.objects.create(name="remote", type="ldap",
                                     config={"authentik_host": "https://auth.example.test/"})
    listing = admin_client.get("/if/admin/authentik_outposts/outpost/").content.decode()
    assert "View deployment info" in listing
    url = f"/if/admin/authentik_outposts/outpost/{outpost.pk}/deployment/"
    page = admin_client.get(url).content.decode()
    key = Token.objects.get(identifier=outpost.token_identifier).read_key()
    assert "https://auth.example.test/" in page and "Show token" in page and key not in page
    assert "command: ldap" in page and "389:3389" in page
    assert not Event.objects.filter(action="secret_view").exists()
    shown = admin_client.post(url)
    assert "no-store" in shown["Cache-Control"]
    body = shown.content.decode()
    assert re.search(r'<code id="authentik-token">([^<]+)</code>', body).group(1) == key
    assert f"AUTHENTIK_TOKEN: {key}" in body
    assert Event.objects.filter(action="secret_view", user__username="root").count() == 1


def test_deployment_info_needs_a_superuser(default_flows):
    outpost = Outpost.objects.create(name="remote", type="proxy")
    client = Client()
    client.force_login(User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1"))
    response = client.post(f"/if/admin/authentik_outposts/outpost/{outpost.pk}/deployment/")
    assert response.status_code in (302, 403)
    assert not Event.objects.filter(action="secret_view").exists()
