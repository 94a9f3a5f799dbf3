"""Seed 001 "MFA, As admin: Directory -> Users -> Select user -> Enroll; Choose: TOTP, WebAuthn, etc.": the admin
enrolls TOTP (secret shown once, confirmed by a code from the user's app) or recovery codes for a user; WebAuthn
is explained, with the link to send the user."""

from __future__ import annotations

import html
import re

import pyotp
import pytest

from core.accounts.models import User
from core.events.models import Event
from core.flows.models import StaticDevice, TOTPDevice
from core.flows.stages.devices import user_devices, verify_static, verify_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def person():
    return User.objects.create_user("mfa-person", "mfa@example.com", "pass-word-1")


def enroll_url(user) -> str:
    return f"/if/admin/authentik_core/user/{user.pk}/enroll/"


def test_the_users_page_links_enroll(admin_client, person):
    page = admin_client.get(f"/if/admin/authentik_core/user/{person.pk}/change/").content.decode()
    assert f'href="{enroll_url(person)}">Enroll</a>' in page
    choices = html.unescape(admin_client.get(enroll_url(person)).content.decode())
    assert 'id="enroll-totp"' in choices and 'id="enroll-static"' in choices
    assert "/if/flow/default-authenticator-webauthn-setup/" in choices  # WebAuthn: the link to send
    assert "cannot enroll it for them" in choices


def test_totp_secret_shown_once_then_confirmed_with_a_code(admin_client, person):
    shown = admin_client.post(enroll_url(person), {"kind": "totp"})
    assert shown.status_code == 200 and "no-store" in shown["Cache-Control"]
    page = html.unescape(shown.content.decode())
    device = TOTPDevice.objects.get(user=person)
    assert not device.confirmed and user_devices(person) == []  # not usable at login before it is confirmed
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert secret == device.key and "<svg" in page  # the QR code
    assert Event.objects.filter(action="secret_view", context__target="mfa-person").exists()

    confirm = f"/if/admin/authentik_core/user/{person.pk}/enroll/totp/{device.pk}/"
    again = admin_client.get(confirm)
    assert secret not in html.unescape(again.content.decode()).replace(" ", "")  # once: not on a later page
    wrong = admin_client.post(confirm, {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
    assert wrong.status_code == 200 and "does not match" in html.unescape(wrong.content.decode())
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    code = pyotp.TOTP(secret).now()
    done = admin_client.post(confirm, {"code": code})
    assert done.status_code == 302 and done["Location"].endswith(f"/user/{person.pk}/change/")
    device.refresh_from_db()
    assert device.confirmed and [d.device_class for d in user_devices(person)] == ["totp"]
    assert not verify_totp(device, code)  # the code the admin typed cannot sign in again
    assert Event.objects.filter(action="model_updated", context__model__model_name="totpdevice").exists()


def test_starting_again_replaces_an_unconfirmed_device(admin_client, person):
    admin_client.post(enroll_url(person), {"kind": "totp"})
    first = TOTPDevice.objects.get(user=person)
    admin_client.post(enroll_url(person), {"kind": "totp"})
    assert list(TOTPDevice.objects.filter(user=person).values_list("confirmed", flat=True)) == [False]
    assert TOTPDevice.objects.get(user=person).pk != first.pk


def test_another_users_device_is_not_confirmed_here(admin_client, person):
    other = User.objects.create_user("other-person", "o@example.com", "pass-word-1")
    device = TOTPDevice.objects.create(user=other, key=pyotp.random_base32())
    response = admin_client.post(f"/if/admin/authentik_core/user/{person.pk}/enroll/totp/{device.pk}/",
                                 {"code": pyotp.TOTP(device.key).now()})
    assert response.status_code == 404 and not TOTPDevice.objects.get(pk=device.pk).confirmed


def test_recovery_codes_shown_once(admin_client, person):
    shown = admin_client.post(enroll_url(person), {"kind": "static"})
    assert shown.status_code == 200 and "no-store" in shown["Cache-Control"]
    codes = re.findall(r"<li><code>([a-z0-9]+)</code></li>", shown.content.decode())
    device = StaticDevice.objects.get(user=person)
    assert device.confirmed and len(codes) == 6 and sorted(codes) == sorted(device.token_set.values_list("token", flat=True))
    assert verify_static(device, codes[0]) and not verify_static(device, codes[0])


def test_an_unknown_kind_is_an_error_and_enrolls_nothing(admin_client, person):
    response = admin_client.post(enroll_url(person), {"kind": "webauthn"})
    assert "unknown authenticator kind" in html.unescape(response.content.decode())
    assert not TOTPDevice.objects.exists() and not StaticDevice.objects.exists()


def test_enroll_needs_the_admin(client, person):
    response = client.post(enroll_url(person), {"kind": "totp"})
    assert response.status_code == 302 and not TOTPDevice.objects.exists()
