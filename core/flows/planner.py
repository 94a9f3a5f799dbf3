"""The flow planner: which stages a flow will run for this request (authentik ``flows/planner.py``).

1. The flow's ``authentication`` requirement (``require_outpost`` needs a request an outpost
   delegated with a valid token).
2. The flow's own policy bindings; a denial raises FlowNonApplicable.
3. The stage bindings in order: ``evaluate_on_plan`` drops a stage whose policies fail now;
   ``re_evaluate_policies`` marks it to be checked again when it is reached.

The plan is plain JSON (binding pks + a context of plain values), kept in the Django session.
The ``initial-setup`` flow is plannable only while no administrator exists (THREATS 14); the
executor checks that again on every request for that flow, so a stale plan cannot finish.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Q

from core.accounts.bootstrap import admin_exists
from core.flows.models import Flow, FlowAuthenticationRequirement, FlowStageBinding
from core.metrics import engine_metrics
from core.policies.engine import evaluate
from core.policies.types import HttpContext, PolicyRequest

LOGGER = logging.getLogger("gatehouse.flows")

SESSION_KEY_PLAN = "gatehouse/flows/plan"
INITIAL_SETUP_SLUG = "initial-setup"
INJECTED_PREFIX = "stage:"  # a plan entry for a stage injected at run time (no binding)
# Where /flows/-/cancel/ sends the browser instead of "/": set by whoever planned the flow (the OIDC
# provider: the client's redirect_uri with error=access_denied, RFC 6749 §4.1.2.1). Never user input.
CANCEL_REDIRECT_KEY = "cancel_redirect"
# The plan's user proved themselves with a link, not a credential: "flow_token" (a mailed link resumed the plan)
# or "recovery_key" (ak create_recovery_key). Such a plan logs in only after the user's second factor.
LINK_KEY = "authenticated_by_link"
# The pk of the user whose authenticator the validation stage accepted in this plan.
MFA_VERIFIED_KEY = "mfa_verified_user"


class FlowNonApplicable(Exception):
    def __init__(self, *messages: str):
        self.messages = [m for m in messages if m] or ["Flow does not apply to current user."]
        super().__init__("; ".join(self.messages))


class EmptyFlow(Exception):
    pass


@dataclass(frozen=True)
class FlowRequest:
    """Everything the executor may know about the HTTP request: plain values, no request object."""

    method: str = "GET"
    data: dict = field(default_factory=dict)
    user: Any = None  # an authenticated User, or None
    client_ip: str = ""
    client_peer: str = ""  # the proxy or outpost that vouched for client_ip ("": the socket peer itself)
    user_agent: str = ""
    host: str = ""
    base_url: str = ""  # scheme://host, for links in emails and the WebAuthn origin
    path: str = ""
    query: dict = field(default_factory=dict)  # the original query string of the flow page
    outpost_user: Any = None  # the outpost service account when an outpost delegated this request

    def http_context(self) -> HttpContext:
        return HttpContext(client_ip=self.client_ip, user_agent=self.user_agent, host=self.host,
                           path=self.path, query=dict(self.query))


@dataclass
class FlowPlan:
    flow_pk: str
    entries: list[str]  # FlowStageBinding pks (or "stage:<pk>" for injected stages), in order
    reevaluate: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"flow_pk": self.flow_pk, "entries": list(self.entries), "reevaluate": list(self.reevaluate),
                "context": self.context}

    @classmethod
    def from_json(cls, data) -> FlowPlan | None:
        """None for anything that is not a plan we wrote (an old or foreign session value)."""
        if not isinstance(data, dict):
            return None
        entries, reevaluate, context = data.get("entries"), data.get("reevaluate", []), data.get("context")
        if not (isinstance(data.get("flow_pk"), str) and isinstance(entries, list) and isinstance(context, dict)
                and isinstance(reevaluate, list) and all(isinstance(e, str) for e in entries)):
            return None
        return cls(data["flow_pk"], list(entries), list(reevaluate), dict(context))


def safe_next(value: str | None, host: str = "") -> str | None:
    """A post-flow redirect target: a same-site path (or an absolute URL on this host, made relative).

    Refuses ``//evil``, ``/\\evil``, schemes, userinfo, control characters and whitespace (THREATS 6).
    """
    if not value or not isinstance(value, str) or len(value) > 4096:
        return None
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc:
            return None
        if parts.netloc.lower() != host.lower():
            return None
        value = parts.path or "/"
        if parts.query:
            value += "?" + parts.query
        parts = urlsplit(value)
    if not value.startswith("/") or value.startswith("//"):
        return None
    return value


class _PlanContext(dict):
    """authentik expressions write ``context["flow_plan"].context["pending_user"] = user``; writes go
    through to the live plan context, with model instances stored as their pk (the plan is JSON)."""

    def __init__(self, live: dict):
        super().__init__(live)
        self._live = live

    def __setitem__(self, key, value):
        value = getattr(value, "pk", value)
        super().__setitem__(key, value)
        self._live[key] = value


class _PlanHandle:
    def __init__(self, live: dict):
        self.context = _PlanContext(live)


def policy_request(req: FlowRequest, user, context: dict, obj=None) -> PolicyRequest:
    """``context`` is the live plan context; policies see a copy plus authentik's ``flow_plan``."""
    visible = dict(context)
    visible["flow_plan"] = _PlanHandle(context)
    return PolicyRequest(user=user, http_request=req.http_context(), obj=obj, context=visible)


def _check_authentication(flow: Flow, req: FlowRequest) -> None:
    need = flow.authentication
    user = req.user
    if need == FlowAuthenticationRequirement.REQUIRE_AUTHENTICATED and user is None:
        raise FlowNonApplicable("Flow requires authentication.")
    if need == FlowAuthenticationRequirement.REQUIRE_UNAUTHENTICATED and user is not None:
        raise FlowNonApplicable("Flow requires being unauthenticated.")
    if need == FlowAuthenticationRequirement.REQUIRE_SUPERUSER and (user is None or not user.is_superuser):
        raise FlowNonApplicable("Flow requires a superuser.")
    if need == FlowAuthenticationRequirement.REQUIRE_REDIRECT and not safe_next(req.query.get("next"), req.host):
        raise FlowNonApplicable("Flow can only be used with a redirect.")
    if need == FlowAuthenticationRequirement.REQUIRE_OUTPOST and req.outpost_user is None:
        raise FlowNonApplicable("Flow can only be used through an outpost.")


def initial_setup_closed(flow: Flow) -> bool:
    return flow.slug == INITIAL_SETUP_SLUG and admin_exists()


def plan(flow: Flow, req: FlowRequest, context: dict | None = None) -> FlowPlan:
    """Plan ``flow`` for ``req``; ``context`` seeds the plan (e.g. the OIDC provider's application)."""
    started = time.perf_counter()
    try:
        return _plan(flow, req, context)
    finally:
        engine_metrics().planned(flow.slug, time.perf_counter() - started)


def _plan(flow: Flow, req: FlowRequest, context: dict | None) -> FlowPlan:
    if initial_setup_closed(flow):
        raise FlowNonApplicable("Initial setup has already been completed; log in instead.")
    _check_authentication(flow, req)
    ctx: dict = dict(context or {})
    if req.user is not None:
        ctx.setdefault("pending_user", req.user.pk)
    if req.outpost_user is not None:
        ctx["outpost"] = {"user": req.outpost_user.username}
    nxt = safe_next(req.query.get("next"), req.host)
    if nxt:
        ctx.setdefault("redirect", nxt)
    user = req.user
    result = evaluate(flow, user, policy_request(req, user, ctx, flow))
    if not result.passing:
        raise FlowNonApplicable(*result.messages)
    entries, reevaluate, planned, skipped = [], [], [], []
    for binding in FlowStageBinding.objects.filter(target=flow).select_related("stage").order_by("order", "pk"):
        if binding.evaluate_on_plan and not evaluate(binding, user, policy_request(req, user, ctx, binding)).passing:
            skipped.append(binding.stage.name)
            continue
        entries.append(str(binding.pk))
        planned.append(binding.stage.name)
        if binding.re_evaluate_policies:
            reevaluate.append(str(binding.pk))
    LOGGER.debug("flow planned", extra={"flow": flow.slug, "stages": planned, "skipped_by_policy": skipped,
                                        "user": getattr(user, "username", "")})
    if not entries:
        raise EmptyFlow(flow.slug)
    return FlowPlan(flow_pk=str(flow.pk), entries=entries, reevaluate=reevaluate, context=ctx)


def plan_for_link(flow: Flow, req: FlowRequest, user, kind: str) -> FlowPlan:
    """``flow`` planned for ``user``, who proved themselves with a link of ``kind`` (a recovery key): the
    stages that identify the user or mail them a link are left out, the link stands in for both. Whatever
    else the flow asks (the second factor, a new password, its policies) stays."""
    planned = plan(flow, req, {"pending_user": user.pk, LINK_KEY: kind})
    stand_ins = {str(pk) for pk in FlowStageBinding.objects.filter(pk__in=planned.entries).filter(
        Q(stage__identificationstage__isnull=False) | Q(stage__emailstage__isnull=False)).values_list("pk", flat=True)}
    planned.entries = [e for e in planned.entries if e not in stand_ins]
    planned.reevaluate = [e for e in planned.reevaluate if e not in stand_ins]
    if not planned.entries:
        raise EmptyFlow(flow.slug)
    return planned
