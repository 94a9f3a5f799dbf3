"""Directory -> Users -> a user -> Enroll (seed 001 "MFA, As admin: ... Enroll; Choose: TOTP, WebAuthn, etc."):
the admin enrolls an authenticator for a user, with the flows' own enrollment code (core/flows/stages).

- TOTP: an unconfirmed device with a new secret, shown once (QR code and text, Cache-Control: no-store, a
  ``secret_view`` event); the admin types a code from the user's app and the device is confirmed (until then
  it does not count at login: core/flows/stages/devices.py lists confirmed devices only). Starting again
  replaces an unconfirmed device left from an earlier try.
- Static recovery codes: a confirmed device, its codes shown once (no-store, ``secret_view``).
- WebAuthn needs the user's own authenticator (a security key or the device's platform authenticator) in the
  user's browser, so the admin cannot enroll it: the page explains this and gives the user's portal enroll link
  to send (and, for a user who cannot sign in, the existing "Create recovery link").
The devices' own saves are audited as model_created / model_updated (core/events/audit.py).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from core.events.record import record
from core.flows.models import AuthenticatorStaticStage, TOTPDevice
from core.flows.stages.authenticator_static import new_codes, save_codes
from core.flows.stages.authenticator_totp import config_url, new_key
from core.flows.stages.devices import totp_step
from core.system.base_url import address_for

WEBAUTHN_SETUP_PATH = "/if/flow/default-authenticator-webauthn-setup/?next=/if/user/%23mfa"  # the portal's link
ADMIN_TOTP_NAME = "TOTP device"
ADMIN_STATIC_NAME = "Static tokens"


def _page(model_admin, request, user, **extra):
    address, source = address_for(request)
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "target": user,
               "title": f"Enroll an authenticator for {user.username}",
               "webauthn_link": address + WEBAUTHN_SETUP_PATH, "link_source": source, **extra}
    response = render(request, "admin/accounts/user_enroll.html", context)
    if extra.get("secret_shown"):
        response["Cache-Control"] = "no-store"
    return response


def enroll(model_admin, request, user):
    """GET: the choices; POST ``kind=totp`` or ``kind=static``: enroll and show the secret once."""
    if request.method != "POST":
        return _page(model_admin, request, user)
    kind = request.POST.get("kind")
    if kind == "totp":
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()  # an abandoned earlier try
        device = TOTPDevice.objects.create(user=user, name=ADMIN_TOTP_NAME, key=new_key(), confirmed=False)
        record("secret_view", user=request.user, target=user.username, what="TOTP secret (admin enroll)")
        return _page(model_admin, request, user, device=device, secret_shown=True,
                     config_url=config_url(device.key, device.digits, user.username))
    if kind == "static":
        defaults = AuthenticatorStaticStage._meta
        codes = new_codes(defaults.get_field("token_count").default, defaults.get_field("token_length").default)
        save_codes(user, ADMIN_STATIC_NAME, codes)
        record("secret_view", user=request.user, target=user.username, what="static recovery codes (admin enroll)")
        return _page(model_admin, request, user, codes=codes, secret_shown=True)
    return _page(model_admin, request, user, error=f"unknown authenticator kind {kind!r}: choose TOTP or recovery "
                                                   "codes (WebAuthn is enrolled by the user, with the link below)")


def confirm_totp(model_admin, request, user, device_pk):
    """The code from the user's app confirms the device (one time step of drift either way, as at login)."""
    device = TOTPDevice.objects.filter(pk=device_pk, user=user).first()
    if device is None:
        raise Http404(f"{user.username} has no TOTP device {device_pk}")
    change = reverse("admin:authentik_core_user_change", args=[user.pk])
    if device.confirmed:
        messages.info(request, f"The TOTP device of {user.username} is confirmed already.")
        return redirect(change)
    if request.method != "POST":
        return _page(model_admin, request, user, device=device)
    code = request.POST.get("code", "").strip().replace(" ", "")
    step = totp_step(device.key, device.digits, device.period, code)
    if step is None:
        return _page(model_admin, request, user, device=device,
                     error=f"the code {code!r} does not match this device's secret: type the {device.digits} "
                           "digits the user's authenticator app shows now (the phone's clock must be right)")
    device.confirmed, device.last_t = True, step  # the code is used: it cannot sign in again
    device.save(update_fields=["confirmed", "last_t"])
    messages.success(request, f"The TOTP device of {user.username} is enrolled and confirmed.")
    return redirect(change)
