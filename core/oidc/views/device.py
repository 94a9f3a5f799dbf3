"""``/device``: a logged-in user types the user_code shown by a device (RFC 8628 §3.3)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from core.accounts.models import hash_key
from core.client_ip import client_ip
from core.events.record import record
from core.oidc.grants.device_code import normalize_user_code
from core.oidc.models import DeviceStatus, DeviceToken
from core.oidc.views.authorize import SERVICE_TYPES, _current_session, access_denied


@require_http_methods(["GET", "POST"])
def device_entry(request):
    from core.flows.views import current_user
    from core.policies.engine import user_has_access

    user = current_user(request)
    code = request.GET.get("code") or request.GET.get("user_code") or ""
    if user is None:
        return HttpResponseRedirect(f"/flows/-/default/authentication/?{urlencode({'next': request.get_full_path()})}")
    if request.method == "GET":
        return render(request, "oidc/device.html", {"code": code})
    typed = normalize_user_code(request.POST.get("user_code", ""))
    row = DeviceToken.objects.select_related("provider").filter(
        user_code_hash=hash_key(typed), status=DeviceStatus.PENDING, expires__gt=timezone.now()).first() \
        if typed else None
    if row is None:
        return render(request, "oidc/device.html", {"code": request.POST.get("user_code", ""),
                                                    "error": "This code is unknown or expired. Check the device."},
                      status=400)
    app = row.provider.application
    if not user.is_active or user.type in SERVICE_TYPES:
        passing, messages = False, ["Service accounts and inactive users cannot sign in to applications."]
    else:
        passing, messages = user_has_access(user, app, request)
    session = _current_session(request, user)
    if not passing:
        DeviceToken.objects.filter(pk=row.pk, status=DeviceStatus.PENDING).update(status=DeviceStatus.DENIED,
                                                                                   user=user)
        record("authorize_application", user=user, client_ip=client_ip(request), app=app.slug, authorized=False,
               device=True)
        return access_denied(request, app, " ".join(messages))
    DeviceToken.objects.filter(pk=row.pk, status=DeviceStatus.PENDING).update(
        status=DeviceStatus.APPROVED, user=user, session=session, auth_time=session.created if session else None)
    record("authorize_application", user=user, client_ip=client_ip(request), app=app.slug, authorized=True,
           device=True, scope=row.scope)
    return render(request, "oidc/message.html", {"title": "Device connected", "calm": True,
                                                 "message": f"You can go back to your device: it is now signed in "
                                                            f"to {app.name}."})
