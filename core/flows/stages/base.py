"""The contract every stage implements (authentik's ``get_challenge`` / ``challenge_valid``).

A stage gets a StageContext (flow, binding, its concrete stage model, the plan, the FlowRequest,
and the executor's effect slots) and answers GET and POST with an Outcome:
``Show`` (a challenge, maybe with response_errors), ``Passed``, ``Denied`` (access denied) or
``Restart``. Stages never see an HTTP request; the view applies login/logout effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.accounts.models import User
from core.flows.planner import FlowPlan, FlowRequest

DEFAULT_AVATAR = (
    "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCA2NCA2NCI+"
    "PGNpcmNsZSBjeD0iMzIiIGN5PSIyNCIgcj0iMTIiIGZpbGw9IiM4ODgiLz48cGF0aCBkPSJNOCA2MGMwLTE0IDExLTIyIDI0LTIyczI0"
    "IDggMjQgMjIiIGZpbGw9IiM4ODgiLz48L3N2Zz4="
)
CANCEL_URL = "/flows/-/cancel/"


@dataclass
class Show:
    body: dict


@dataclass
class Passed:
    pass


@dataclass
class Denied:
    message: str = "Access denied."


@dataclass
class Restart:
    keep_context: bool = False


Outcome = Show | Passed | Denied | Restart


@dataclass
class LoginEffect:
    user_pk: int
    expiry_seconds: int
    auth_method: str
    remember_me: bool = False
    terminate_other_sessions: bool = False


@dataclass
class Effects:
    login: LoginEffect | None = None
    logout: bool = False
    password_changed: bool = False  # the logged-in user changed their own password: keep the session
    events: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # name -> ms, sent as Server-Timing (e.g. "hash")


def flow_title(flow, context: dict | None = None) -> str:
    """The flow's title with authentik's ``%(app)s`` placeholder filled in with the application the plan is
    for (the OIDC provider puts ``application`` in the context); unchanged without one."""
    title = flow.title or flow.name
    if "%(app)s" not in title:
        return title
    pk = (context or {}).get("application")
    if not pk:
        return title
    from core.accounts.models import Application

    name = Application.objects.filter(pk=pk).values_list("name", flat=True).first()
    return title.replace("%(app)s", name) if name else title


def flow_info(flow, context: dict | None = None) -> dict:
    return {"title": flow_title(flow, context), "background": flow.background or "", "cancel_url": CANCEL_URL,
            "layout": flow.layout or "stacked"}


def error(message: str, code: str = "invalid") -> list[dict]:
    return [{"string": message, "code": code}]


@dataclass
class StageContext:
    flow: Any
    binding: Any  # FlowStageBinding, or None for an injected stage
    stage: Any  # the concrete stage model
    plan: FlowPlan
    request: FlowRequest
    effects: Effects
    users: dict = field(default_factory=dict)  # pk -> User, shared by the stages of one request

    @property
    def context(self) -> dict:
        return self.plan.context

    @property
    def pending_user(self) -> User | None:
        pk = self.plan.context.get("pending_user")
        if pk is None:
            return None
        if pk not in self.users:
            self.users[pk] = User.objects.filter(pk=pk).first()
        return self.users[pk]

    def set_pending_user(self, user: User | None) -> None:
        if user is None:
            self.plan.context.pop("pending_user", None)
        else:
            self.plan.context["pending_user"] = user.pk
            self.users[user.pk] = user

    def identifier(self) -> str:
        """The name the person typed (or the pending user's): used for rate limits and events."""
        typed = self.plan.context.get("pending_user_identifier")
        if typed:
            return typed
        user = self.pending_user
        return user.username if user else ""

    def flow_info(self) -> dict:
        return flow_info(self.flow, self.plan.context)


class StageView:
    component: str = ""
    with_user_info = False

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.stage = ctx.stage

    # --- building challenges ---------------------------------------------------------------
    def challenge_fields(self) -> dict:
        return {}

    def show(self, errors: dict | None = None, **extra) -> Show:
        body = {"component": self.component, "flow_info": self.ctx.flow_info(), "response_errors": errors or {}}
        if self.with_user_info:
            # The name as typed, never the account's: otherwise "alice@example.com" -> "alice" would
            # reveal that the account exists (no user enumeration).
            body["pending_user"] = self.ctx.identifier()
            body["pending_user_avatar"] = DEFAULT_AVATAR
        body.update(self.challenge_fields())
        body.update(extra)
        return Show(body)

    def invalid(self, field_name: str, message: str, code: str = "invalid") -> Show:
        return self.show({field_name: error(message, code)})

    # --- the contract ----------------------------------------------------------------------
    def get(self) -> Outcome:
        return self.show()

    def post(self, data: dict) -> Outcome:
        return self.show()
