"""``/application/o/<slug>/end-session/``: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2-3).

``id_token_hint`` is optional; when given it must be a token this provider signed (expiry is not
checked: it is a hint). ``post_logout_redirect_uri`` must match the provider's redirect URIs exactly
as at /authorize (or by an opted-in regex, anchored); ``state`` is passed back. The user's session is
ended by deleting its AuthenticatedSession (outposts get SESSION_END; the tokens of that session go
with it) and flushing the Django session.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.client_ip import client_ip
from core.oidc import keys
from core.oidc.client import uri_allowed
from core.oidc.views.provider import provider_for


def _params(request) -> dict:
    data = request.GET.dict()
    if request.method == "POST":
        data.update(request.POST.dict())
    return data


def _verify_hint(provider, hint: str) -> bool:
    try:
        material = keys.signing_material(provider)
        key = material.key if material.alg == "HS256" else material.key.public_key()
        jwt.decode(hint, key, algorithms=[material.alg], audience=provider.client_id,
                   options={"verify_exp": False})
    except (jwt.PyJWTError, keys.SigningKeyError, ValueError):
        return False
    return True


def _with_state(uri: str, state: str | None) -> str:
    if not state:
        return uri
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode({'state': state})}" if parts.query else urlencode({"state": state})
    return urlunsplit(parts._replace(query=query))


def _page(request, title: str, message: str, status: int = 200, calm: bool = True):
    return render(request, "oidc/message.html", {"title": title, "message": message, "calm": calm,
                                                 "link": "/", "link_text": "Sign in again"}, status=status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def end_session(request, slug: str):
    from core.flows.views import end_session as end_flow_session

    provider = provider_for(slug)
    params = _params(request)
    hint = params.get("id_token_hint")
    if hint and not _verify_hint(provider, hint):
        return _page(request, "Sign-out request refused", "The id_token_hint was not issued by this application's "
                     "provider.", status=400, calm=False)
    target = params.get("post_logout_redirect_uri")
    if target and not uri_allowed(provider.redirect_uris, target):
        return _page(request, "Sign-out request refused", "post_logout_redirect_uri is not one of this "
                     "application's registered redirect URIs.", status=400, calm=False)
    if request.user.is_authenticated or request.session.session_key:
        end_flow_session(request, client_ip(request))
    if target:
        return HttpResponseRedirect(_with_state(target, params.get("state")))
    return _page(request, "Signed out", f"You have been signed out of {provider.application.name}.")
