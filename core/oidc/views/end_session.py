"""``/application/o/<slug>/end-session/``: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2-3).

``id_token_hint`` is optional; when given it must be a token this provider signed (expiry is not
checked: it is a hint). ``post_logout_redirect_uri`` must match the provider's redirect URIs exactly
as at /authorize (or by an opted-in regex, anchored); ``state`` is passed back. The user's session is
ended by deleting its AuthenticatedSession (outposts get SESSION_END; the tokens of that session go
with it) and flushing the Django session.

Any site can link to or embed this URL, and the browser sends the user's cookies with it, so the
request alone proves nothing about the user's wish (issue 8 item 11). As §2 and §4 recommend, the
OP asks: a signed-in user without a hint of the *current* login session (its ``sid``) gets a page
whose form POSTs to ``end-session/confirm/`` with Django's CSRF token, and only that POST ends the
session. A valid hint whose ``sid`` is the current session's (what mod_auth_openidc and the proxy
outpost send) logs out at once, as §2 allows. authentik runs the invalidation flow on any GET; we
differ on purpose. Nobody signed in: nothing to end, the redirect happens at once.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from core.accounts.models import AuthenticatedSession
from core.client_ip import client_ip
from core.oidc import keys
from core.oidc.client import uri_allowed
from core.oidc.views.provider import provider_for


def _params(request) -> dict:
    data = request.GET.dict()
    if request.method == "POST":
        data.update({k: v for k, v in request.POST.dict().items() if k != "csrfmiddlewaretoken"})
    return data


def _verify_hint(provider, hint: str) -> dict | None:
    """The hint's claims when this provider signed it for itself, else None."""
    try:
        material = keys.signing_material(provider)
        key = material.key if material.alg == "HS256" else material.key.public_key()
        return jwt.decode(hint, key, algorithms=[material.alg], audience=provider.client_id,
                          options={"verify_exp": False})
    except (jwt.PyJWTError, keys.SigningKeyError, ValueError):
        return None


def _with_state(uri: str, state: str | None) -> str:
    if not state:
        return uri
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode({'state': state})}" if parts.query else urlencode({"state": state})
    return urlunsplit(parts._replace(query=query))


def _page(request, title: str, message: str, status: int = 200, calm: bool = True):
    return render(request, "oidc/message.html", {"title": title, "message": message, "calm": calm,
                                                 "link": "/", "link_text": "Sign in again"}, status=status)


def _refused(request, message: str):
    return _page(request, "Sign-out request refused", message, status=400, calm=False)


def _target(request, provider, params: dict):
    """(post_logout_redirect_uri or "", None) when it is registered exactly, else (None, a 400 page)."""
    target = params.get("post_logout_redirect_uri") or ""
    if target and not uri_allowed(provider.redirect_uris, target):
        return None, _refused(request, "post_logout_redirect_uri is not one of this application's registered "
                                       "redirect URIs.")
    return target, None


def _current_session(request):
    key = request.session.session_key
    if not key or not request.user.is_authenticated:
        return None
    return AuthenticatedSession.objects.filter(session_key=key, user=request.user).first()


def _sign_out(request, provider, target: str, state: str | None):
    from core.flows.views import end_session as end_flow_session

    if request.user.is_authenticated or request.session.session_key:
        end_flow_session(request, client_ip(request))
    if target:
        return HttpResponseRedirect(_with_state(target, state))
    return _page(request, "Signed out", f"You have been signed out of {provider.application.name}.")


@csrf_exempt  # the RP may POST its logout request (§2); a POST here never ends a session without a hint
@require_http_methods(["GET", "POST"])
def end_session(request, slug: str):
    provider = provider_for(slug)
    params = _params(request)
    hint = params.get("id_token_hint")
    claims = _verify_hint(provider, hint) if hint else None
    if hint and claims is None:
        return _refused(request, "The id_token_hint was not issued by this application's provider.")
    target, refused = _target(request, provider, params)
    if refused is not None:
        return refused
    session = _current_session(request)
    hinted_sid = (claims or {}).get("sid")
    if session is None or (isinstance(hinted_sid, str) and secrets.compare_digest(hinted_sid, session.sid)):
        return _sign_out(request, provider, target, params.get("state"))
    return render(request, "oidc/end_session.html", {
        "application": provider.application.name, "user": request.user.username,
        "action": f"/application/o/{slug}/end-session/confirm/", "target": target,
        "state": params.get("state") or ""})


@require_POST  # CSRF-protected (Django's middleware): the form of the confirmation page above
def end_session_confirm(request, slug: str):
    provider = provider_for(slug)
    params = _params(request)
    target, refused = _target(request, provider, params)
    if refused is not None:
        return refused
    return _sign_out(request, provider, target, params.get("state"))
