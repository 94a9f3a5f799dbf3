"""Issue 12 item 4, the admin's Directory: groups with their members (two-column picker) and parent; tokens and
app passwords with their expiry and "Copy key" (a POST, a secret_view event, Cache-Control: no-store); the users
list's search and filters (active, superuser, groups)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.accounts.models import Group, Token, TokenIntents, User
from core.events.models import Event

pytestmark = pytest.mark.django_db
GROUPS = "/if/admin/authentik_core/group/"
TOKENS = "/if/admin/authentik_core/token/"


def test_a_group_is_created_with_members_and_a_parent(admin_client, monkeypatch):
    from core.outposts import signals

    sent = []
    monkeypatch.setattr(signals, "_defer", lambda target, message, kwargs: sent.append(target))
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    sam = User.objects.create_user("sam", "sam@example.com", "pw-pw-pw-1")
    staff = Group.objects.create(name="staff")
    page = admin_client.get(f"{GROUPS}add/").content.decode()
    assert 'name="members"' in page and "selectfilter" in page  # the two-column picker
    assert 'name="parent"' in page
    response = admin_client.post(f"{GROUPS}add/", {"name": "grafana-admins", "parent": staff.pk,
                                                   "members": [pat.pk, sam.pk], "attributes": "{}"})
    assert response.status_code == 302, response.content.decode()[:3000]
    group = Group.objects.get(name="grafana-admins")
    assert group.parent == staff and set(group.users.all()) == {pat, sam}
    assert None in sent  # memberships change what the outposts' snapshots allow: every outpost refetches
    assert Event.objects.filter(action="model_updated", context__model__name="grafana-admins",
                                context__relation__field="users").exists()
    change = admin_client.get(f"{GROUPS}{group.pk}/change/").content.decode()
    selected = re.search(r'<select name="members".*?</select>', change, re.S).group(0)
    assert re.search(rf'<option value="{pat.pk}" selected>', selected)
    response = admin_client.post(f"{GROUPS}{group.pk}/change/", {"name": "grafana-admins", "parent": staff.pk,
                                                                "members": [sam.pk], "attributes": "{}"})
    assert response.status_code == 302
    assert list(group.users.all()) == [sam]


def test_a_group_cannot_be_its_own_ancestor(admin_client):
    top = Group.objects.create(name="top")
    child = Group.objects.create(name="child", parent=top)
    response = admin_client.post(f"{GROUPS}{top.pk}/change/", {"name": "top", "parent": child.pk,
                                                              "attributes": "{}"})
    assert response.status_code == 200
    assert "a group cannot be a parent of its own parent" in response.content.decode()
    top.refresh_from_db()
    assert top.parent is None


def test_a_token_created_in_the_admin_has_an_expiry_and_its_key_is_shown_on_demand(admin_client):
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    expires = (timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
    response = admin_client.post(f"{TOKENS}add/", {
        "identifier": "pat-grafana", "intent": TokenIntents.INTENT_APP_PASSWORD, "user": pat.pk,
        "description": "Grafana", "expiring": "on",
        "expires_0": expires.strftime("%Y-%m-%d"), "expires_1": expires.strftime("%H:%M:%S")})
    assert response.status_code == 302, response.content.decode()[:3000]
    token = Token.objects.get(identifier="pat-grafana")
    assert token.expires == expires and token.key_hash
    listing = admin_client.get(TOKENS).content.decode()
    assert "Copy key" in listing and expires.strftime("%Y") in listing
    url = f"{TOKENS}{token.pk}/key/"
    page = admin_client.get(url)
    assert b"Show key" in page.content and b'id="token-key"' not in page.content
    assert not Event.objects.filter(action="secret_view").exists()
    shown = admin_client.post(url)
    assert "no-store" in shown["Cache-Control"]
    key = re.search(r'<code id="token-key">([^<]+)</code>', shown.content.decode()).group(1)
    assert Token.authenticate(key, (TokenIntents.INTENT_APP_PASSWORD,)) == token
    assert Event.objects.filter(action="secret_view", context__token="pat-grafana").count() == 1


def test_the_expiry_is_editable_and_an_expiring_token_needs_a_date(admin_client):
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    token = Token(identifier="pat-api", intent=TokenIntents.INTENT_API, user=pat)
    token.set_key()
    token.save()
    url = f"{TOKENS}{token.pk}/change/"
    base = {"identifier": "pat-api", "intent": "api", "user": pat.pk, "description": ""}
    missing = admin_client.post(url, {**base, "expiring": "on", "expires_0": "", "expires_1": ""})
    assert missing.status_code == 200 and "an expiring token needs a date" in missing.content.decode()
    never = admin_client.post(url, {**base, "expires_0": "", "expires_1": ""})
    assert never.status_code == 302
    token.refresh_from_db()
    assert token.expiring is False and token.expires is None


def test_a_network_password_shows_its_key_once_at_creation_only(admin_client):
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    created = admin_client.post(f"{TOKENS}add/", {"identifier": "pat-wifi", "intent": TokenIntents.INTENT_RADIUS,
                                                  "user": pat.pk, "description": "", "expires_0": "", "expires_1": ""})
    assert created.status_code == 200 and "no-store" in created["Cache-Control"]
    key = re.search(r'<code id="token-key">([^<]+)</code>', created.content.decode()).group(1)
    token = Token.objects.get(identifier="pat-wifi")
    assert token.read_key() == key and "not shown again" in created.content.decode()
    later = admin_client.post(f"{TOKENS}{token.pk}/key/").content.decode()
    assert 'id="token-key"' not in later and "shown once" in later


def test_copy_key_is_a_csrf_protected_post_for_superusers_only(admin_client, default_flows):
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    token = Token(identifier="pat-api", intent=TokenIntents.INTENT_API, user=pat)
    token.set_key()
    token.save()
    url = f"{TOKENS}{token.pk}/key/"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(User.objects.get(username="root"))
    assert strict.post(url).status_code == 403  # no CSRF token
    other = Client()
    other.force_login(pat)
    assert other.post(url).status_code in (302, 403)
    assert not Event.objects.filter(action="secret_view").exists()


def test_users_list_search_and_filters(admin_client):
    admins = Group.objects.get(name="authentik Admins")
    ops = Group.objects.create(name="ops", parent=admins)  # superuser through its parent
    User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1").groups.add(ops)
    User.objects.create_user("sam", "sam@example.com", "pw-pw-pw-1", is_active=False)
    listing = "/if/admin/authentik_core/user/"

    def names(query: str) -> set[str]:
        html = admin_client.get(listing + query).content.decode()
        return set(re.findall(r'<th class="field-username"><a [^>]*>([^<]+)</a>', html))

    assert names("") == {"root", "pat", "sam"}
    assert names("?q=sam%40example") == {"sam"}
    assert names("?is_active__exact=0") == {"sam"}
    assert names("?superuser=yes") == {"root", "pat"}
    assert names("?superuser=no") == {"sam"}
    assert names(f"?groups__group_uuid__exact={ops.pk}") == {"pat"}


def test_an_outposts_managed_token_is_view_only(admin_client):
    from core.outposts.models import Outpost

    outpost = Outpost.objects.create(name="remote", type="proxy")
    token = Token.objects.get(identifier=outpost.token_identifier)
    page = admin_client.get(f"{TOKENS}{token.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "Copy key" in page
    before = token.key_hash
    assert admin_client.post(f"{TOKENS}{token.pk}/change/", {"identifier": "stolen", "intent": "api",
                                                            "user": token.user_id}).status_code == 403
    token.refresh_from_db()
    assert token.identifier == outpost.token_identifier and token.key_hash == before
