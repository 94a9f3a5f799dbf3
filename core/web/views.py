"""The user portal /if/user/: launcher, MFA devices, password change, network passwords, sessions with revoke."""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_POST

from core.accounts.launch_url import launchable
from core.accounts.models import Application, AuthenticatedSession, Token, TokenIntents
from core.events.record import record
from core.flows.models import StaticDevice, TOTPDevice, WebAuthnDevice
from core.policies.engine import user_has_access

DEVICE_MODELS = {"totp": TOTPDevice, "static": StaticDevice, "webauthn": WebAuthnDevice}
LOGIN_URL = "/if/flow/default-authentication-flow/"


def _login_redirect(request):
    return HttpResponseRedirect(f"{LOGIN_URL}?next={quote(request.get_full_path(), safe='')}")


def _may_use(user, application) -> bool:
    passing, _messages = user_has_access(user, application)
    return passing


def launcher_apps(user) -> list[dict]:
    apps = []
    for app in Application.objects.select_related("provider").order_by("name"):
        url = app.meta_launch_url
        if not url and app.provider_id:
            external = getattr(getattr(app.provider, "proxyprovider", None), "external_host", "")
            url = external
        if not launchable(url) or not _may_use(user, app):
            continue
        apps.append({"name": app.name, "slug": app.slug, "launch_url": url, "launch_host": urlsplit(url).netloc,
                     "meta_description": app.meta_description, "open_in_new_tab": app.open_in_new_tab})
    return apps


def user_devices(user) -> list[dict]:
    devices = []
    for kind, model in DEVICE_MODELS.items():
        for d in model.objects.filter(user=user, confirmed=True):
            devices.append({"kind": kind, "pk": d.pk, "name": d.name, "last_used": d.last_used})
    return devices


def portal(request):
    if not request.user.is_authenticated:
        return _login_redirect(request)
    current = request.session.session_key
    sessions = [
        {"uuid": s.uuid, "last_ip": s.last_ip, "last_user_agent": s.last_user_agent, "last_used": s.last_used,
         "current": s.session_key == current}
        for s in AuthenticatedSession.objects.filter(user=request.user)
    ]
    return render(request, "web/user.html", _portal_context(request, sessions=sessions))


def _portal_context(request, **extra) -> dict:
    if "sessions" not in extra:
        current = request.session.session_key
        extra["sessions"] = [
            {"uuid": s.uuid, "last_ip": s.last_ip, "last_user_agent": s.last_user_agent, "last_used": s.last_used,
             "current": s.session_key == current}
            for s in AuthenticatedSession.objects.filter(user=request.user)]
    network = Token.objects.filter(user=request.user, intent=TokenIntents.INTENT_RADIUS).order_by("-created")
    return {"apps": launcher_apps(request.user), "devices": user_devices(request.user),
            "network_passwords": network, **extra}


NETWORK_PASSWORD_DESCRIPTION_MAX = 200


@require_POST
@login_required(login_url=LOGIN_URL)
def create_network_password(request):
    """A network password (a token of intent ``radius``: RADIUS CHAP / MS-CHAPv2, core/providers/radius/challenge.py)
    for the signed-in user. Its key is on this answer only (never stored readable, never shown again: view_key
    refuses it), so the page is not cached. It lives as long as the user's tokens may (token_maximum_lifetime)."""
    from django.utils import timezone

    from core.accounts.api_tokens import token_maximum_lifetime

    description = (request.POST.get("description") or "").strip()[:NETWORK_PASSWORD_DESCRIPTION_MAX]
    token = Token(identifier=f"network-password-{request.user.pk}-{secrets.token_hex(6)}", user=request.user,
                  intent=TokenIntents.INTENT_RADIUS, description=description or "network password",
                  expires=timezone.now() + token_maximum_lifetime(request.user))
    key = token.set_key()
    token.save()
    record("model_created", user=request.user, message="network password created from the user portal",
           token=token.identifier)
    response = render(request, "web/user.html", _portal_context(request, new_network_password=key,
                                                                new_network_identifier=token.identifier))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required(login_url=LOGIN_URL)
def delete_network_password(request, identifier):
    deleted = Token.objects.filter(identifier=identifier, user=request.user,
                                   intent=TokenIntents.INTENT_RADIUS).delete()[0]
    if not deleted:
        raise Http404("no such network password of yours")
    record("model_deleted", user=request.user, message="network password deleted from the user portal",
           token=identifier)
    return HttpResponseRedirect("/if/user/#network")


@require_POST
@login_required(login_url=LOGIN_URL)
def revoke_session(request, uuid):
    session = AuthenticatedSession.objects.filter(uuid=uuid, user=request.user).first()
    if session is None:
        raise Http404("no such session of yours")
    was_current = session.session_key == request.session.session_key
    session.delete()  # the Django session and the outposts' copies end with the row (core/accounts/sessions.py)
    record("logout", user=request.user, message="session revoked from the user portal")
    if was_current:
        request.session.flush()
        return HttpResponseRedirect(LOGIN_URL)
    return HttpResponseRedirect("/if/user/#sessions")


@require_POST
@login_required(login_url=LOGIN_URL)
def delete_device(request, kind, pk):
    model = DEVICE_MODELS.get(kind)
    if model is None or not model.objects.filter(pk=pk, user=request.user).delete()[0]:
        raise Http404("no such device of yours")
    record("user_write", user=request.user, message=f"{kind} device removed")
    return HttpResponseRedirect("/if/user/#mfa")


def root(request):
    return HttpResponseRedirect("/if/user/" if request.user.is_authenticated else LOGIN_URL)
