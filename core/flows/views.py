"""HTTP around the executor: the JSON executor API, the server-rendered flow page, default-flow
redirects, cancel, and the recovery link. The executor itself never sees a request object; this
module turns requests into FlowRequests and applies the login / logout effects.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
from importlib import import_module
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, login, logout
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.accounts.models import AuthenticatedSession, Token, TokenIntents, User, UserTypes
from core.accounts.sessions import row_checked
from core.accounts.signals import FLOW_LOGIN_ATTR
from core.client_ip import client_ip, vouched_by
from core.events.record import record
from core.flows.executor import FlowResult, execute, flow_info
from core.flows.models import Flow, FlowDesignation
from core.flows.planner import (
    CANCEL_REDIRECT_KEY,
    SESSION_KEY_PLAN,
    EmptyFlow,
    FlowNonApplicable,
    FlowPlan,
    FlowRequest,
    plan_for_link,
    safe_next,
)
from core.flows.planner import plan as make_plan
from core.flows.stages.base import LoginEffect

LOGGER = logging.getLogger("gatehouse.flows")
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"
OUTPOST_TOKEN_HEADER = "X-authentik-outpost-token"  # noqa: S105 - a header name
REMOTE_IP_HEADER = "X-authentik-remote-ip"
DEFAULT_SLUGS = {
    FlowDesignation.AUTHENTICATION: "default-authentication-flow",
    FlowDesignation.INVALIDATION: "default-invalidation-flow",
    FlowDesignation.RECOVERY: "default-recovery-flow",
}


# --- request -> FlowRequest ----------------------------------------------------------------


def delegated_client(request) -> tuple[str, User | None]:
    """The client address and the outpost user (reference §1.7).

    ``X-authentik-remote-ip`` replaces the address only when ``X-authentik-outpost-token`` is a
    valid API token of an internal service account (an outpost's); otherwise both are ignored.
    """
    ip = client_ip(request)
    key = request.headers.get(OUTPOST_TOKEN_HEADER)
    if not key:
        return ip, None
    token = Token.authenticate(key, (TokenIntents.INTENT_API,))
    if token is None or token.user.type != UserTypes.INTERNAL_SERVICE_ACCOUNT:
        return ip, None
    remote = (request.headers.get(REMOTE_IP_HEADER) or "").strip()
    try:
        ip = str(ipaddress.ip_address(remote)) if remote else ip
    except ValueError:
        pass  # an unparsable delegated address is ignored, never trusted (THREATS 3)
    return ip, token.user


def current_user(request):
    """The logged-in user, or None. A session whose AuthenticatedSession row was deleted (revoked
    from the portal, the admin or the API) is logged out here (THREATS 12)."""
    user = request.user
    if not user.is_authenticated:
        return None
    key = request.session.session_key
    if row_checked(request, key, user.pk):  # RevokedSessionMiddleware found it in this request
        return user
    if not key or not AuthenticatedSession.objects.filter(session_key=key, user=user).exists():
        logout(request)
        return None
    return user


def flow_request(request, query: QueryDict, data: dict) -> FlowRequest:
    ip, outpost_user = delegated_client(request)
    host = request.get_host()
    return FlowRequest(
        method=request.method, data=data, user=current_user(request), client_ip=ip,
        client_peer=vouched_by(request, ip),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512], host=host,
        base_url=f"{request.scheme}://{host}", path=request.path,
        query={k: query.get(k) for k in query}, outpost_user=outpost_user)


# --- effects -------------------------------------------------------------------------------


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def start_session(request, user: User, effect: LoginEffect, ip: str) -> AuthenticatedSession:
    """Log ``user`` in: Django's login() rotates the session key (THREATS 7), then the row."""
    old_key = request.session.session_key
    if old_key and AuthenticatedSession.objects.filter(session_key=old_key).delete()[0]:
        request.session.cycle_key()  # the old key left the store with its row; keep the data under a new one
    # The user_logged_in receiver (core/accounts/signals.py) leaves the row to us (we know the stage's
    # duration and the delegated address), so the freshly rotated key gets exactly one row.
    setattr(request, FLOW_LOGIN_ATTR, True)
    try:
        login(request, user, backend=AUTH_BACKEND)
    finally:
        delattr(request, FLOW_LOGIN_ATTR)
    request.session.set_expiry(effect.expiry_seconds)
    if not request.session.session_key:
        request.session.save()
    key = request.session.session_key
    session = AuthenticatedSession.objects.create(
        session_key=key, user=user, last_ip=ip, last_user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        expires=timezone.now() + timezone.timedelta(seconds=effect.expiry_seconds))
    if effect.terminate_other_sessions:
        store = _session_store()
        for other in AuthenticatedSession.objects.filter(user=user).exclude(pk=session.pk):
            store(session_key=other.session_key).delete()
            other.delete()
    record("login", user=user, client_ip=ip, auth_method=effect.auth_method, remember_me=effect.remember_me)
    return session


def end_session(request, ip: str) -> None:
    """Delete the AuthenticatedSession row (outposts get SESSION_END) and flush the session."""
    user = request.user if request.user.is_authenticated else None
    key = request.session.session_key
    if key:
        AuthenticatedSession.objects.filter(session_key=key).delete()
    logout(request)
    if user is not None:
        record("logout", user=user, client_ip=ip)


def apply(request, req: FlowRequest, result: FlowResult) -> None:
    effects = result.effects
    if effects.logout:
        end_session(request, req.client_ip)
    if effects.password_changed and request.user.is_authenticated:
        # Django ties a session to the password hash; keep this session (as authentik does) under
        # the same key, so its AuthenticatedSession row (and the outposts' sid) stays valid.
        request.user.refresh_from_db()
        request.session[HASH_SESSION_KEY] = request.user.get_session_auth_hash()
    if effects.login is not None:
        user = User.objects.filter(pk=effects.login.user_pk, is_active=True).first()
        if user is not None:
            start_session(request, user, effects.login, req.client_ip)
    if result.plan is not None:
        request.session[SESSION_KEY_PLAN] = result.plan.to_json()
    else:
        request.session.pop(SESSION_KEY_PLAN, None)


def _flow_or_404(slug: str) -> Flow:
    flow = Flow.objects.filter(slug=slug).first()
    if flow is None:
        raise Http404(f"no flow with slug {slug!r}")
    return flow


# --- the executor API ----------------------------------------------------------------------


@csrf_exempt
@require_http_methods(["GET", "POST"])
def executor_api(request, flow_slug: str):
    """``/api/v3/flows/executor/<slug>/?query=...``. CSRF-exempt, so a POST must be JSON: a
    cross-site form cannot send that without a CORS preflight (no login CSRF)."""
    flow = Flow.objects.filter(slug=flow_slug).first()
    if flow is None:
        return JsonResponse({"detail": f"no flow with slug {flow_slug!r}"}, status=404)
    data: dict = {}
    if request.method == "POST":
        if request.content_type != "application/json":
            return JsonResponse({"detail": f"send the answer as application/json, not {request.content_type!r}"},
                                status=415)
        try:
            data = json.loads(request.body or b"{}")
        except RecursionError:  # core.input_guard refuses these first; never a 500 if it is bypassed
            return JsonResponse({"detail": "the JSON body is nested too deeply"}, status=400)
        except ValueError as exc:
            return JsonResponse({"detail": f"the body is not JSON: {exc}"}, status=400)
        if not isinstance(data, dict):
            return JsonResponse({"detail": "the body must be a JSON object with a 'component'"}, status=400)
    query = QueryDict(request.GET.get("query", ""))
    req = flow_request(request, query, data)
    try:
        with transaction.atomic():
            result = execute(flow, req, request.session.get(SESSION_KEY_PLAN))
    except Exception as exc:  # noqa: BLE001 - an answer, an event, and a 500; never a pass
        return _flow_error(request, flow, req, exc)
    with transaction.atomic():  # the login's writes (session, rows, event) commit once
        apply(request, req, result)
    if result.kind == "stage_redirect":
        return server_timing(HttpResponseRedirect(request.get_full_path()), result)
    return server_timing(JsonResponse(result.challenge), result)


def server_timing(response, result: FlowResult):
    """``Server-Timing`` with what the stages measured (the password hash), for benchmarks and browsers."""
    timings = result.effects.timings
    if timings:
        response["Server-Timing"] = ", ".join(f"{name};dur={ms:.1f}" for name, ms in timings.items())
    return response


def _flow_error(request, flow: Flow, req: FlowRequest, exc: Exception) -> JsonResponse:
    """authentik's ``ak-stage-flow-error``; the plan is dropped so the next request starts over."""
    LOGGER.exception("flow %s failed", flow.slug)
    request.session.pop(SESSION_KEY_PLAN, None)
    record("system_exception", client_ip=req.client_ip, message=f"{type(exc).__name__} in flow {flow.slug}")
    return JsonResponse({"component": "ak-stage-flow-error", "flow_info": flow_info(flow), "response_errors": {},
                         "error": "Something went wrong; please start again."}, status=500)


# --- the flow page (server-rendered; works without JavaScript) -----------------------------


def _form_answer(component: str, post: QueryDict) -> dict:
    data = {k: post.get(k) for k in post if k != "csrfmiddlewaretoken"}
    data["component"] = component
    if component == "ak-stage-authenticator-validate":
        device_class = data.pop("device_class", None)
        if device_class:
            data["selected_challenge"] = {"device_class": device_class}
        if data.get("webauthn"):
            try:
                data["webauthn"] = json.loads(data["webauthn"])
            except ValueError:
                data["webauthn"] = None
    if component == "ak-stage-authenticator-webauthn" and data.get("response"):
        try:
            data["response"] = json.loads(data["response"])
        except ValueError:
            data["response"] = None
    for key in ("remember_me",):
        if key in data:
            data[key] = data[key] in ("on", "true", "1")
    return data


def _qr(config_url: str) -> str:
    import segno

    return segno.make(config_url, error="m").svg_data_uri(scale=4)


def flow_page(request, flow_slug: str):
    flow = _flow_or_404(flow_slug)
    data: dict = {}
    if request.method == "POST":
        data = _form_answer(request.POST.get("component", ""), request.POST)
    req = flow_request(request, request.GET, data)
    with transaction.atomic():
        result = execute(flow, req, request.session.get(SESSION_KEY_PLAN))
    with transaction.atomic():  # the login's writes (session, rows, event) commit once
        apply(request, req, result)
    if result.kind == "stage_redirect":
        return server_timing(HttpResponseRedirect(request.get_full_path()), result)
    challenge = result.challenge or {}
    if challenge.get("component") == "xak-flow-redirect":
        return server_timing(HttpResponseRedirect(challenge["to"]), result)
    if request.method == "POST" and not challenge.get("response_errors") \
            and challenge.get("component") != "ak-stage-access-denied":
        return server_timing(HttpResponseRedirect(request.get_full_path()), result)  # post/redirect/get
    errors = [e["string"] for errs in (challenge.get("response_errors") or {}).values() for e in errs]
    extra = {}
    if challenge.get("config_url"):
        extra["qr"] = _qr(challenge["config_url"])
    executor_url = f"/api/v3/flows/executor/{flow.slug}/?{urlencode({'query': request.GET.urlencode()})}"
    status = 403 if challenge.get("component") == "ak-stage-access-denied" else 200
    return server_timing(render(request, "flows/flow.html", {
        "flow": flow, "c": challenge, "errors": errors, "executor_url": executor_url,
        "webauthn_json": json.dumps(challenge.get("registration") or next(
            (d["challenge"] for d in challenge.get("device_challenges", []) if d["device_class"] == "webauthn"),
            None)), **extra}, status=status), result)


# --- helpers for other apps and small redirects --------------------------------------------


def start_flow(request, flow: Flow, context: dict, next_url: str | None = None) -> HttpResponseRedirect:
    """Plan ``flow`` with ``context`` (e.g. the OIDC provider's ``application`` and
    ``consent_permissions``), keep it in the session, and send the browser to the flow page.
    Raises core.flows.planner.FlowNonApplicable when the flow does not apply."""
    query = QueryDict(mutable=True)
    if next_url and safe_next(next_url, request.get_host()):
        query["next"] = next_url
    req = flow_request(request, query, {})
    plan = make_plan(flow, req, context)
    request.session[SESSION_KEY_PLAN] = plan.to_json()
    suffix = f"?{query.urlencode()}" if query else ""
    return HttpResponseRedirect(f"/if/flow/{flow.slug}/{suffix}")


def _default_flow(designation: str) -> Flow | None:
    return Flow.objects.filter(slug=DEFAULT_SLUGS.get(designation, "")).first() or \
        Flow.objects.filter(designation=designation).order_by("slug").first()


def default_flow_redirect(request, designation: str, query: QueryDict | None = None):
    """To the default flow of ``designation`` with ``query`` (the request's by default), its ``next`` kept only
    when it is a safe same-site target (THREATS 6): the flow checks it again where it is used."""
    flow = _default_flow(designation)
    if flow is None:
        raise Http404(f"no {designation} flow; apply the default blueprints (ak apply_blueprint)")
    query = (request.GET if query is None else query).copy()
    nxt = safe_next(query.get("next"), request.get_host())
    query.pop("next", None)
    if nxt:
        query["next"] = nxt
    suffix = f"?{query.urlencode()}" if query else ""
    return HttpResponseRedirect(f"/if/flow/{flow.slug}/{suffix}")


def login_redirect(request):
    """Every login page other than the flow's (Django admin's ``/if/admin/login/``, Django's ``LOGIN_URL``) sends
    the browser into the default authentication flow with its ``next`` (issue 8 item 1): no form of its own is
    served and no posted password is ever read, so the flow's stages (MFA), rate limits and events always apply."""
    query = QueryDict(mutable=True)
    nxt = request.GET.get("next") or (request.POST.get("next") if request.method == "POST" else None)
    if nxt:
        query["next"] = nxt
    return default_flow_redirect(request, FlowDesignation.AUTHENTICATION, query)


def denied_page(request, message: str, status: int):
    """authentik's access-denied card, outside a flow (a bad recovery link, a page the user may not open)."""
    return render(request, "flows/flow.html", {"c": {"component": "ak-stage-access-denied", "error_message": message}},
                  status=status)


def default_authentication(request):
    return default_flow_redirect(request, FlowDesignation.AUTHENTICATION)


def default_invalidation(request):
    return default_flow_redirect(request, FlowDesignation.INVALIDATION)


def cancel(request):
    """Drop the running flow. A flow planned with a cancel target (an OAuth authorization's consent) ends
    there; anything else goes home."""
    plan = FlowPlan.from_json(request.session.pop(SESSION_KEY_PLAN, None))
    target = plan.context.get(CANCEL_REDIRECT_KEY) if plan is not None else None
    if isinstance(target, str) and target:
        response = HttpResponse(status=302)  # not HttpResponseRedirect: native apps' custom schemes
        response["Location"] = target
        return response
    return HttpResponseRedirect("/")


def use_recovery_token(request):
    """``/recovery/use-token/?token=<key>`` (``ak create_recovery_key``) through the flow executor (issue 8 item 4).

    The key stands in for what the default recovery flow's identification and mailed link prove: it names the
    pending user of a fresh plan of that flow without its identification and email stages, so what follows is
    exactly what the mailed link leads to -- the user's second factor when they have one, a new password, then
    the flow's own login. The key is spent once the plan exists (single use, even when racing); nobody is logged
    in here.
    """
    token = Token.authenticate(request.GET.get("token", ""), (TokenIntents.INTENT_RECOVERY,))
    invalid = "This recovery link is invalid, expired or already used."
    if token is None:
        return denied_page(request, invalid, 404)
    flow = _default_flow(FlowDesignation.RECOVERY)
    if flow is None:  # the key is kept: it works once the flow is there
        LOGGER.error("recovery key of %s not used: there is no recovery flow; apply the default blueprints",
                     token.user.username)
        return denied_page(request, "There is no recovery flow to continue with: apply the default blueprints "
                                    "(ak apply_blueprint) and open the link again.", 503)
    req = dataclasses.replace(flow_request(request, QueryDict(), {}), user=None)  # nobody is signed in by a key
    try:
        plan = plan_for_link(flow, req, token.user, "recovery_key")
    except (FlowNonApplicable, EmptyFlow) as exc:
        reason = str(exc) if isinstance(exc, FlowNonApplicable) else "it has no stages besides identification and email"
        LOGGER.warning("recovery key of %s not used: flow %s cannot run for it: %s", token.user.username, flow.slug,
                       reason)
        return denied_page(request, f"The recovery flow cannot continue with this link: {reason}.", 403)
    if Token.objects.filter(pk=token.pk).delete()[0] != 1:
        return denied_page(request, invalid, 404)
    plan.context["auth_method"] = "token"  # what the login event says, unless the second factor follows
    record("recovery_token_used", user=token.user, client_ip=req.client_ip, token=token.identifier)
    request.session[SESSION_KEY_PLAN] = plan.to_json()
    return HttpResponseRedirect(f"/if/flow/{flow.slug}/")
