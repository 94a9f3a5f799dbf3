"""Issue 12 item 4, the admin's Directory -> Users: deactivate/activate (sessions end), set a password, create a
recovery link (shown once), and the user's MFA devices listed and removable."""

from __future__ import annotations

import re

import pytest

from core.accounts.models import AuthenticatedSession, Token, TokenIntents, User
from core.events.models import Event
from core.flows.models import TOTPDevice

pytestmark = pytest.mark.django_db



def test_deactivate_ends_sessions_and_activate(admin_client):
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    AuthenticatedSession.objects.create(session_key="pat-session", user=pat)
    root = User.objects.get(username="root")
    changelist = "/if/admin/authentik_core/user/"
    response = admin_client.post(changelist, {"action": "deactivate", "_selected_action": [pat.pk, root.pk]})
    assert response.status_code == 302
    pat.refresh_from_db()
    root.refresh_from_db()
    assert not pat.is_active and root.is_active  # never yourself
    assert not AuthenticatedSession.objects.filter(user=pat).exists()
    admin_client.post(changelist, {"action": "activate", "_selected_action": [pat.pk]})
    pat.refresh_from_db()
    assert pat.is_active


def test_set_password_and_recovery_link(admin_client):
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    page = admin_client.get(f"/if/admin/authentik_core/user/{pat.pk}/change/").content.decode()
    assert "Set password" in page and "Create recovery link" in page
    url = f"/if/admin/authentik_core/user/{pat.pk}/password/"
    differ = admin_client.post(url, {"password": "New-pass-123!", "repeat": "other"})
    assert differ.status_code == 200 and "differ" in differ.content.decode()
    assert admin_client.post(url, {"password": "New-pass-123!", "repeat": "New-pass-123!"}).status_code == 302
    pat.refresh_from_db()
    assert pat.check_password("New-pass-123!")
    assert Event.objects.filter(action="password_set").exists()
    assert "Create a recovery link" in admin_client.get(f"/if/admin/authentik_core/user/{pat.pk}/recovery/").content.decode()
    shown = admin_client.post(f"/if/admin/authentik_core/user/{pat.pk}/recovery/")
    link = re.search(r'<code id="recovery-link">([^<]+)</code>', shown.content.decode()).group(1)
    assert link.startswith("/recovery/use-token/?token=") and "no-store" in shown["Cache-Control"]
    assert Token.objects.filter(user=pat, intent=TokenIntents.INTENT_RECOVERY).count() == 1


def test_mfa_devices_listed_and_removable(admin_client):
    pat = User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1")
    device = TOTPDevice.objects.create(user=pat, key="JBSWY3DPEHPK3PXP", confirmed=True, name="phone")
    page = admin_client.get(f"/if/admin/authentik_core/user/{pat.pk}/change/").content.decode()
    assert "phone" in page and "TOTP Devices" in page
    assert device.pk
