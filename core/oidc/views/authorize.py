"""``/application/o/authorize/`` (RFC 6749 §4.1.1, OIDC Core §3.1.2).

Decide, then respond: authlib validates the request (client, exact redirect_uri, response_type,
scopes narrowed to the provider's mappings, PKCE S256, nonce); then, in order: login (prompt /
max_age; a fresh login never ends the current session before it completes), the user's kind and state,
the application's bindings, the provider's authorization flow (consent), and finally the code.

Errors that cannot be sent back to a validated redirect_uri are shown to the user as a page
(RFC 6749 §4.1.2.1: never redirect to an unverified URI).

The authorization flow runs in the flow executor. To know that it really finished (and was not
skipped by requesting the continue URL directly), its final redirect carries a one-time secret
that only the executor reveals, at the end of the plan; the session keeps its hash.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import AccessDeniedError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from django.core import signing
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.accounts.models import AuthenticatedSession, UserTypes
from core.client_ip import client_ip
from core.events.record import record
from core.oidc.claims import mappings
from core.oidc.server import Server

DONE_PARAM = "ak_authz_done"
REAUTH_PARAM = "ak_login_since"
REAUTH_SALT = "gatehouse.oidc.authorize.prompt-login"
REAUTH_MAX_AGE = 3600  # seconds a prompt=login request may take to complete its login
SESSION_PENDING = "goauthentik.io/providers/oauth2/pending"
DEFAULT_AUTHENTICATION = "default-authentication-flow"
SERVICE_TYPES = (UserTypes.SERVICE_ACCOUNT, UserTypes.INTERNAL_SERVICE_ACCOUNT)
MAX_PENDING = 20


def _params(request) -> dict[str, str]:
    data = request.GET.dict()
    if request.method == "POST":
        data.update({k: v for k, v in request.POST.dict().items() if k != "csrfmiddlewaretoken"})
    return data


def _url(params: dict[str, str]) -> str:
    return f"/application/o/authorize/?{urlencode(params)}"


def _digest(params: dict[str, str]) -> str:
    clean = sorted((k, v) for k, v in params.items() if k != DONE_PARAM)
    return hashlib.sha256(urlencode(clean).encode()).hexdigest()


def error_page(request, message: str, status: int = 400, title: str = "Sign-in request refused"):
    return render(request, "oidc/message.html", {"title": title, "message": message}, status=status)


def access_denied(request, app, message: str):
    """The core's access-denied page (HTML 403 naming the application); no code is issued."""
    return render(request, "flows/flow.html", {"c": {
        "component": "ak-stage-access-denied",
        "error_message": f"You do not have access to {app.name}. {message}".strip()}}, status=403)


def _login_redirect(provider, params: dict[str, str]) -> HttpResponseRedirect:
    flow = provider.authentication_flow
    slug = flow.slug if flow is not None else DEFAULT_AUTHENTICATION
    return HttpResponseRedirect(f"/if/flow/{slug}/?{urlencode({'next': _url(params)})}")


def _redirect_error(server, grant, error_cls, request):
    error = error_cls(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
    return server.handle_error_response(grant.request, error)


def _current_session(request, user):
    key = request.session.session_key
    if not key:
        return None
    return AuthenticatedSession.objects.filter(session_key=key, user=user).first()


def _flow_done(request, params: dict[str, str]) -> bool:
    secret = params.get(DONE_PARAM)
    pending = request.session.get(SESSION_PENDING) or {}
    if not secret or not isinstance(pending, dict):
        return False
    digest = pending.pop(hashlib.sha256(secret.encode()).hexdigest(), None)
    request.session[SESSION_PENDING] = pending
    return digest is not None and secrets.compare_digest(digest, _digest(params))


def _start_authorization_flow(request, flow, provider, app, scopes: list[str], params: dict[str, str],
                              denied_url: str = ""):
    """Plan the provider's authorization flow; None when it has nothing to ask (implicit consent).
    ``denied_url`` (the validated redirect_uri with error=access_denied and state) is where cancelling the
    flow (e.g. "Cancel" on the consent page) sends the browser (RFC 6749 §4.1.2.1)."""
    from core.flows.planner import CANCEL_REDIRECT_KEY, EmptyFlow, FlowNonApplicable
    from core.flows.views import start_flow

    secret = secrets.token_urlsafe(24)
    pending = request.session.get(SESSION_PENDING) or {}
    if not isinstance(pending, dict) or len(pending) >= MAX_PENDING:
        pending = {}
    pending[hashlib.sha256(secret.encode()).hexdigest()] = _digest(params)
    permissions = [{"id": m.scope_name, "name": m.description} for m in mappings(provider)
                   if m.scope_name in scopes and m.description]
    clean = {k: v for k, v in params.items() if k != DONE_PARAM}
    context = {"application": str(app.pk), "consent_permissions": permissions,
               "redirect": _url({**clean, DONE_PARAM: secret})}
    if denied_url:
        context[CANCEL_REDIRECT_KEY] = denied_url
    try:
        response = start_flow(request, flow, context)
    except EmptyFlow:
        return None
    except FlowNonApplicable as exc:
        return access_denied(request, app, "; ".join(exc.messages))
    request.session[SESSION_PENDING] = pending
    return response


def _login_since(params: dict[str, str]) -> float | None:
    """When this request first asked for a fresh login (REAUTH_PARAM, signed by us), or None."""
    value = params.get(REAUTH_PARAM)
    if not value:
        return None
    try:
        return float(signing.loads(value, salt=REAUTH_SALT, max_age=REAUTH_MAX_AGE))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def _with_login_since(params: dict[str, str]) -> dict[str, str]:
    """The way back from the login flow: prompt and max_age kept, with the signed time a login was
    first asked for, so that returning without logging in asks again and one completed login is
    enough (authentik keeps the last login's id in the session instead, which a login as another
    user flushes)."""
    since = _login_since(params) or time.time()
    back = {k: v for k, v in params.items() if k != DONE_PARAM}
    back[REAUTH_PARAM] = signing.dumps(since, salt=REAUTH_SALT)
    return back


def _needs_fresh_login(params: dict[str, str], session) -> bool:
    """prompt=login, or a session older than max_age (OIDC Core §3.1.2.1), until a login completed
    after this request first asked for one."""
    since = _login_since(params)
    if since is not None and session is not None and session.created.timestamp() >= since:
        return False
    prompts = set(params.get("prompt", "").split())
    if "login" in prompts:
        return True
    max_age = params.get("max_age")
    if max_age not in (None, "") and session is not None:
        try:
            limit = int(max_age)
        except ValueError:
            return False
        return time.time() - session.created.timestamp() > max(limit, 0)
    return False


@csrf_exempt  # as exposed to cross-site requests as the GET form; issuing a code needs the user's session
@require_http_methods(["GET", "POST"])
def authorize(request):
    from core.flows.views import current_user

    server = Server(request)
    params = _params(request)
    try:
        grant = server.get_consent_grant(request, end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return server.handle_error_response(None, error)
        return error_page(request, f"{error.error}: {error.description or 'invalid request'}")
    except ValueError:  # authlib refuses to echo control characters in an error description
        return error_page(request, "invalid_request: a parameter contains control characters")
    provider = grant.request.client.provider
    app = provider.application
    prompts = set(params.get("prompt", "").split())
    user = current_user(request)

    if user is None:
        if "none" in prompts:
            return _redirect_error(server, grant, LoginRequiredError, request)
        fresh = "login" in prompts or params.get("max_age") not in (None, "")
        return _login_redirect(provider, _with_login_since(params) if fresh else params)
    session = _current_session(request, user)
    if _needs_fresh_login(params, session):
        if "none" in prompts:
            return _redirect_error(server, grant, LoginRequiredError, request)
        # The authentication flow runs for a signed-in user too, and only a completed login replaces
        # the session: a cross-site link with prompt=login signs nobody out (issue 8 item 11).
        return _login_redirect(provider, _with_login_since(params))

    if not user.is_active or user.type in SERVICE_TYPES:
        return access_denied(request, app, "Service accounts and inactive users cannot sign in to applications.")
    from core.policies.engine import user_has_access

    passing, messages = user_has_access(user, app, request)
    if not passing:
        record("authorize_application", user=user, client_ip=client_ip(request), app=app.slug,
               authorized=False, messages=messages)
        return access_denied(request, app, " ".join(messages))

    scopes = (grant.request.scope or "").split()
    flow = provider.authorization_flow
    if flow is not None and not _flow_done(request, params):
        if "none" in prompts and flow.bindings_set.exists():
            return _redirect_error(server, grant, ConsentRequiredError, request)
        denied_url = _redirect_error(server, grant, AccessDeniedError, request).get("Location", "")
        response = _start_authorization_flow(request, flow, provider, app, scopes, params, denied_url)
        if response is not None:
            return response

    server.authorize_context = {"session": session, "auth_time": session.created if session else None}
    response = server.create_authorization_response(grant.request, grant_user=user, grant=grant)
    record("authorize_application", user=user, client_ip=client_ip(request), app=app.slug, authorized=True,
           scope=" ".join(scopes), flow=flow.slug if flow is not None else "")
    return response
