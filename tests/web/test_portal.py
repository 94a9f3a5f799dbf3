import pytest

from core.accounts.models import Application, AuthenticatedSession, Group, User
from core.flows.models import TOTPDevice
from core.policies.models import PolicyBinding

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(client):
    user = User.objects.create_user("pat", "pat@example.com", "pw")
    client.force_login(user)
    AuthenticatedSession.objects.update_or_create(session_key=client.session.session_key,
                                                  defaults={"user": user, "last_ip": "127.0.0.1"})
    return user


def test_anonymous_goes_to_login(client):
    resp = client.get("/if/user/")
    assert resp.status_code == 302 and resp["Location"].startswith("/if/flow/default-authentication-flow/?next=")
    assert client.get("/")["Location"].startswith("/if/flow/default-authentication-flow/")


def test_launcher_shows_only_allowed_apps(client, user):
    Application.objects.create(name="Open", slug="open", meta_launch_url="https://open.example.com")
    closed = Application.objects.create(name="Closed", slug="closed", meta_launch_url="https://closed.example.com")
    admins = Group.objects.create(name="closed-users")
    PolicyBinding.objects.create(target=closed, group=admins, order=0)
    Application.objects.create(name="Evil", slug="evil", meta_launch_url="javascript:alert(1)")
    body = client.get("/if/user/").content.decode()
    assert 'data-slug="open"' in body and 'data-slug="closed"' not in body and "javascript:" not in body
    user.groups.add(admins)
    assert 'data-slug="closed"' in client.get("/if/user/").content.decode()


def test_revoke_other_session_and_device(client, user):
    other = AuthenticatedSession.objects.create(session_key="other-key", user=user, last_ip="10.0.0.2")
    device = TOTPDevice.objects.create(user=user, key="JBSWY3DPEHPK3PXP", confirmed=True, name="phone")
    body = client.get("/if/user/").content.decode()
    assert "10.0.0.2" in body and "phone" in body and "(this one)" in body
    assert client.post(f"/if/user/sessions/{other.uuid}/revoke/").status_code == 302
    assert not AuthenticatedSession.objects.filter(uuid=other.uuid).exists()
    assert client.post(f"/if/user/devices/totp/{device.pk}/delete/").status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()


def test_cannot_revoke_someone_elses_session(client, user):
    stranger = User.objects.create_user("stranger")
    theirs = AuthenticatedSession.objects.create(session_key="theirs", user=stranger)
    assert client.post(f"/if/user/sessions/{theirs.uuid}/revoke/").status_code == 404
    assert AuthenticatedSession.objects.filter(uuid=theirs.uuid).exists()


def test_revoking_current_session_logs_out(client, user):
    current = AuthenticatedSession.objects.get(user=user)
    resp = client.post(f"/if/user/sessions/{current.uuid}/revoke/")
    assert resp.status_code == 302 and "default-authentication-flow" in resp["Location"]
    assert client.get("/if/user/").status_code == 302


def test_network_password_shown_once_listed_and_deleted(client, user):
    import hashlib
    import re

    from core.accounts.models import Token, TokenIntents

    resp = client.post("/if/user/network-passwords/", {"description": "laptop Wi-Fi"})
    assert resp.status_code == 200 and resp["Cache-Control"] == "no-store"
    key = re.search(r'<code id="new-network-password">([^<]+)</code>', resp.content.decode()).group(1)
    token = Token.objects.get(user=user, intent=TokenIntents.INTENT_RADIUS)
    assert token.description == "laptop Wi-Fi" and token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token.expires is not None
    page = client.get("/if/user/").content.decode()
    assert "laptop Wi-Fi" in page and key not in page  # listed, never shown again
    stranger = User.objects.create_user("stranger2")
    theirs = Token(identifier="theirs-radius", user=stranger, intent=TokenIntents.INTENT_RADIUS)
    theirs.set_key()
    theirs.save()
    assert client.post("/if/user/network-passwords/theirs-radius/delete/").status_code == 404
    assert client.post(f"/if/user/network-passwords/{token.identifier}/delete/").status_code == 302
    assert not Token.objects.filter(pk=token.pk).exists() and Token.objects.filter(identifier="theirs-radius").exists()


def test_network_passwords_need_a_signed_in_user(client):
    resp = client.post("/if/user/network-passwords/", {"description": "x"})
    assert resp.status_code == 302 and "default-authentication-flow" in resp["Location"]
