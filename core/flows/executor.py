"""The flow executor: plain data in (FlowRequest + the stored plan), plain data out (FlowResult).

One call answers one GET or POST of ``/api/v3/flows/executor/<slug>/`` (reference §5.1):
- the pending challenge (maybe with ``response_errors``);
- ``stage_redirect``: the stage passed and more follow (the view answers 302 to itself);
- ``xak-flow-redirect`` {to}: the flow finished;
- ``ak-stage-access-denied`` {error_message}.
Login and logout are effects the view applies (they need the HTTP session). The plan to store
next comes back in the result (None: remove it).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.apps import apps
from django.db import connection
from django.utils import timezone

from core.accounts.models import User, hash_key
from core.events.record import record
from core.flows.models import Flow, FlowDeniedAction, FlowDesignation, FlowStageBinding, FlowToken, Stage
from core.flows.planner import (
    INJECTED_PREFIX,
    LINK_KEY,
    EmptyFlow,
    FlowNonApplicable,
    FlowPlan,
    FlowRequest,
    initial_setup_closed,
    policy_request,
    safe_next,
)
from core.flows.planner import plan as make_plan
from core.flows.stages import view_for
from core.flows.stages.base import Denied, Effects, Passed, Restart, Show, StageContext, flow_info
from core.flows.stages.email import RESTORED_KEY
from core.metrics import engine_metrics
from core.policies.engine import evaluate, load_bindings_of

LOGGER = logging.getLogger("gatehouse.flows")
MAX_AUTO_STEPS = 20  # stages that pass on GET without user input, chained in one answer at most


@dataclass
class FlowResult:
    kind: str  # "challenge" | "stage_redirect"
    challenge: dict | None = None
    plan: FlowPlan | None = None
    effects: Effects = field(default_factory=Effects)

    @property
    def component(self) -> str | None:
        return (self.challenge or {}).get("component")


def access_denied(flow: Flow, message: str, context: dict | None = None) -> dict:
    return {"component": "ak-stage-access-denied", "flow_info": flow_info(flow, context), "response_errors": {},
            "error_message": message}


def flow_redirect(flow: Flow, to: str, context: dict | None = None) -> dict:
    return {"component": "xak-flow-redirect", "flow_info": flow_info(flow, context), "response_errors": {},
            "to": to}


@functools.cache
def _all_kinds(vendor: str) -> tuple[str, tuple[type, ...]]:
    """One UNION ALL over the Stage subclass tables giving (kind index, stage pk) for every stage. Built once per
    database vendor from the models' metadata (no user input). Joining every subclass table into one SELECT
    instead costs PostgreSQL ~25 ms of planning per query."""
    kinds = tuple(m for m in apps.get_models() if issubclass(m, Stage) and m is not Stage)
    quote = connection.ops.quote_name
    parts = [f"SELECT {i}, {quote(m._meta.pk.column)} FROM {quote(m._meta.db_table)}"  # noqa: S608
             for i, m in enumerate(kinds)]  # table and column names from the models
    return " UNION ALL ".join(parts), kinds


def _uuid(entry: str):
    try:
        return uuid.UUID(entry)
    except ValueError:
        return None


class KindCache:
    """Which concrete model each stage and each binding's stage is, so that loading a plan entry takes one query.

    Filled whole (two queries: every binding's stage pk, and every stage's table) the first time an entry is
    asked for, and again whenever one is missing (a binding added since) or turns out to be of another kind than
    remembered (an administrator pointed a binding at another stage): every load is then the same query whatever
    came before, and the cache holds configuration only (stages and bindings, never users). One per process
    (``KINDS``); a refresh replaces the dicts whole, so threads share it without a lock.
    """

    def __init__(self):
        self.stages: dict = {}  # stage pk -> concrete model (Stage for a stage of no kind)
        self.bindings: dict = {}  # str(binding pk) -> the concrete model of its stage

    def refresh(self) -> None:
        sql, kinds = _all_kinds(connection.vendor)
        found: dict = {}
        with connection.cursor() as cursor:
            cursor.execute(sql)
            for index, raw in cursor.fetchall():
                pk = Stage._meta.pk.to_python(raw)
                model = kinds[index]
                if pk not in found or len(model._meta.get_parent_list()) > len(found[pk]._meta.get_parent_list()):
                    found[pk] = model  # the deepest subclass
        bindings = {str(pk): found.get(stage_pk, Stage)
                    for pk, stage_pk in FlowStageBinding.objects.order_by().values_list("pk", "stage_id")}
        self.stages, self.bindings = found, bindings

    def binding(self, pk: str):
        if pk not in self.bindings:
            self.refresh()
        return self.bindings.get(pk)

    def stage(self, pk):
        if pk not in self.stages:
            self.refresh()
        return self.stages.get(pk, Stage)


KINDS = KindCache()


def _chain(model: type) -> list[type]:
    """The Stage subclasses from Stage's child down to ``model`` (one item for the usual direct subclass)."""
    parents = [m for m in model._meta.get_parent_list() if m is not Stage and issubclass(m, Stage)]
    parents.sort(key=lambda m: len(m._meta.get_parent_list()))
    return [*parents, model]


def _descend(stage: Stage, model: type) -> Stage | None:
    """The ``model`` instance select_related() attached below ``stage``, or None when the stage is of another kind."""
    if model is Stage:
        return stage
    for kind in _chain(model):
        stage = getattr(stage, kind._meta.model_name, None)
        if stage is None:
            return None
    return stage


def _with_kind(queryset, model: type):
    if model is Stage:
        return queryset.select_related("stage")
    return queryset.select_related("__".join(["stage", *(m._meta.model_name for m in _chain(model))]))


def concrete_stage(stage: Stage) -> Stage:
    """``stage`` as its most derived kind, in one query (the process knows every stage's kind: KINDS)."""
    model = KINDS.stage(stage.pk)
    if model is Stage:
        return stage
    return model.objects.filter(pk=stage.pk).first() or stage


class Executor:
    def __init__(self, flow: Flow, req: FlowRequest):
        self.flow = flow
        self.req = req
        self.effects = Effects()
        self.users: dict = {} if req.user is None else {req.user.pk: req.user}  # one load per request
        self.loaded: dict = {}  # plan entry -> (binding, concrete stage): one load per request
        self.policy_bindings: dict | None = None  # binding pk -> its policy bindings, for re-evaluated entries

    def next_request(self, req: FlowRequest) -> None:
        """Serve the next request of an in-process run with this executor (core/flows/outpost_login.py answers a
        whole flow inside one outpost call): its caches (users, loaded stages) carry over, which is what one HTTP
        request of the executor API gets too; the effects start empty. HTTP requests get a new Executor each."""
        self.req = req
        self.effects = Effects()

    # --- results ---------------------------------------------------------------------------
    def _result(self, kind: str, challenge: dict | None = None, plan: FlowPlan | None = None) -> FlowResult:
        return FlowResult(kind=kind, challenge=challenge, plan=plan, effects=self.effects)

    def _denied(self, message: str, plan: FlowPlan | None = None) -> FlowResult:
        return self._result("challenge", access_denied(self.flow, message, plan.context if plan else None))

    def _done(self, plan: FlowPlan | None) -> FlowResult:
        to = None
        if plan is not None:
            to = safe_next(plan.context.get("redirect"), self.req.host)
        to = to or safe_next(self.req.query.get("next"), self.req.host) or "/"
        LOGGER.debug("flow finished", extra={"flow": self.flow.slug, "to": urlsplit(to).path})  # no query: it may carry a code
        return self._result("challenge", flow_redirect(self.flow, to, plan.context if plan else None))

    # --- plan loading ----------------------------------------------------------------------
    def _restore_token(self) -> FlowPlan | None:
        key = self.req.query.get("flow_token")
        if not key:
            return None
        token = FlowToken.objects.filter(key_hash=hash_key(key), flow=self.flow).first()
        if token is None:
            return None
        deleted, _ = FlowToken.objects.filter(pk=token.pk).delete()  # single use, even when racing
        if deleted != 1 or token.expires < timezone.now():
            return None
        plan = FlowPlan.from_json(token.plan)
        if plan is not None:
            plan.context[RESTORED_KEY] = True
            LOGGER.debug("flow plan restored from a flow token", extra={"flow": self.flow.slug})
            plan.context[LINK_KEY] = "flow_token"  # from here on the mailed link vouches for the user
        return plan

    def _handle_non_applicable(self, exc: FlowNonApplicable) -> FlowResult:
        LOGGER.debug("flow not applicable", extra={"flow": self.flow.slug, "reasons": exc.messages,
                                                   "denied_action": self.flow.denied_action})
        if self.flow.designation == FlowDesignation.AUTHENTICATION and self.req.user is not None:
            return self._done(None)
        nxt = safe_next(self.req.query.get("next"), self.req.host)
        if self.flow.denied_action in (FlowDeniedAction.CONTINUE, FlowDeniedAction.MESSAGE_CONTINUE) and nxt \
                and not initial_setup_closed(self.flow):
            return self._result("challenge", flow_redirect(self.flow, nxt))
        if self.flow.denied_action == FlowDeniedAction.CONTINUE:
            return self._result("challenge", flow_redirect(self.flow, "/"))
        return self._denied("; ".join(exc.messages))

    def run(self, stored: dict | None, seed_context: dict | None = None) -> FlowResult:
        if initial_setup_closed(self.flow):  # THREATS 14: checked on every request, not only at planning
            return self._denied("Initial setup has already been completed; log in instead.")
        plan = self._restore_token()
        if plan is None:
            plan = FlowPlan.from_json(stored) if stored else None
            if plan is not None and plan.flow_pk != str(self.flow.pk):
                plan = None
        if plan is None:
            try:
                plan = make_plan(self.flow, self.req, seed_context)
            except FlowNonApplicable as exc:
                return self._handle_non_applicable(exc)
            except EmptyFlow:
                return self._done(None)
        return self._step(plan, self.req.method.upper() == "POST")

    # --- stepping --------------------------------------------------------------------------
    def _load(self, entry: str):
        """(binding or None, concrete stage) for a plan entry, or None when it no longer exists."""
        if entry not in self.loaded:
            self.loaded[entry] = self._load_now(entry)
        return self.loaded[entry]

    def _load_now(self, entry: str):
        if entry.startswith(INJECTED_PREFIX):
            stage = Stage.objects.filter(pk=entry.removeprefix(INJECTED_PREFIX)).first()
            return (None, concrete_stage(stage)) if stage else None
        bindings = FlowStageBinding.objects.filter(pk=entry, target=self.flow).order_by()
        for attempt in (1, 2):
            kind = KINDS.binding(entry)
            if kind is None:
                return None  # no such binding (any more)
            binding = _with_kind(bindings, kind).first()  # one query: the binding, its stage, the stage's table
            if binding is None:
                return None
            stage = _descend(binding.stage, kind)
            if stage is not None:
                return binding, stage
            if attempt == 1:
                KINDS.refresh()  # the binding now names a stage of another kind
        return binding, concrete_stage(binding.stage)

    def _policy_bindings(self, plan: FlowPlan, binding) -> list:
        """The policy bindings of ``binding``: those of every entry still to be re-evaluated are loaded together,
        in one query, the first time one is needed in this request (a request that passes several stages
        re-evaluates several)."""
        if self.policy_bindings is None or binding.pk not in self.policy_bindings:
            pending = [e for e in plan.entries if e in plan.reevaluate and not e.startswith(INJECTED_PREFIX)]
            pks = {pk for pk in (binding.pk, *(_uuid(e) for e in pending)) if pk is not None}
            self.policy_bindings = {**(self.policy_bindings or {}), **load_bindings_of(pks)}
        return self.policy_bindings[binding.pk]

    def _next(self, plan: FlowPlan):
        """The next runnable entry, dropping those whose policies now fail (re_evaluate_policies)."""
        while plan.entries:
            entry = plan.entries[0]
            loaded = self._load(entry)
            if loaded is None:
                # The binding was deleted while the flow ran: the plan is stale; fail closed.
                raise FlowNonApplicable("The flow changed while it was running; please start again.")
            binding, stage = loaded
            if binding is not None and entry in plan.reevaluate:
                user = self.req.user
                pending = plan.context.get("pending_user")
                typed = plan.context.get("pending_user_identifier")
                if (pending is not None or typed) and (user is None or user.pk != pending):
                    # A typed name that found nobody is looked up like one that did (pk 0 is nobody's): the
                    # work must not tell known names from unknown ones (issue 8 item 10).
                    key = pending if pending is not None else 0
                    if key not in self.users:
                        self.users[key] = User.objects.filter(pk=key).first()
                    user = self.users[key] if pending is not None else user
                result = evaluate(binding, user, policy_request(self.req, user, plan.context, binding),
                                  bindings=self._policy_bindings(plan, binding), many=False)
                plan.reevaluate.remove(entry)
                if not result.passing:
                    LOGGER.debug("flow stage skipped: its policies no longer pass", extra={
                        "flow": self.flow.slug, "stage": stage.name, "messages": list(result.messages)})
                    plan.entries.pop(0)
                    continue
            return binding, stage
        return None

    def _step(self, plan: FlowPlan, is_post: bool) -> FlowResult:
        for _ in range(MAX_AUTO_STEPS):
            try:
                found = self._next(plan)
            except FlowNonApplicable as exc:
                return self._denied("; ".join(exc.messages), plan)
            if found is None:
                return self._done(plan)
            binding, stage = found
            view_cls = view_for(stage)
            if view_cls is None:
                LOGGER.error("no view for stage %s (%s)", stage.name, type(stage).__name__)
                return self._denied(f"Stage {stage.name!r} cannot be executed.", plan)
            ctx = StageContext(flow=self.flow, binding=binding, stage=stage, plan=plan, request=self.req,
                               effects=self.effects, users=self.users)
            view = view_cls(ctx)
            started = time.perf_counter()
            if is_post:
                data = self.req.data if isinstance(self.req.data, dict) else {}
                component = data.get("component")
                if component and view.component and component != view.component:
                    outcome = view.show({"component": [{"string": f"expected component {view.component!r}, "
                                                        f"got {component!r}", "code": "invalid"}]})
                else:
                    outcome = view.post(data)
            else:
                outcome = view.get()
            engine_metrics().stage(view_cls, self.req.method, time.perf_counter() - started)
            _log_stage(self.flow, stage, view, self.req.method, outcome, plan)
            if isinstance(outcome, Show):
                if is_post and outcome.body.get("response_errors") and binding is not None \
                        and binding.invalid_response_action != "retry":
                    outcome = Restart(keep_context=binding.invalid_response_action == "restart_with_context")
                else:
                    return self._result("challenge", outcome.body, plan)
            if isinstance(outcome, Denied):
                return self._denied(outcome.message, plan)
            if isinstance(outcome, Restart):
                try:
                    fresh = make_plan(self.flow, self.req, plan.context if outcome.keep_context else None)
                except (FlowNonApplicable, EmptyFlow):
                    return self._denied("The flow cannot be restarted.", plan)
                return self._result("stage_redirect", plan=fresh)
            assert isinstance(outcome, Passed)
            plan.entries.pop(0)
            if not plan.entries:
                return self._done(plan)
            if is_post:
                return self._result("stage_redirect", plan=plan)
            # A stage that passed on GET (no input needed): go on to the next one in the same answer.
        return self._denied("Too many stages passed without input.", plan)


def _log_stage(flow: Flow, stage: Stage, view, method: str, outcome, plan: FlowPlan) -> None:
    """One debug line per stage run: shown (waits for input), invalid (with the fields' error messages, never
    the values sent), passed, denied (with the reason) or restart."""
    if not LOGGER.isEnabledFor(logging.DEBUG):
        return
    fields = {"flow": flow.slug, "stage": stage.name, "component": view.component, "method": method.upper(),
              "pending_user": plan.context.get("pending_user")}
    if isinstance(outcome, Show):
        errors = outcome.body.get("response_errors") or {}
        fields["result"] = "invalid" if errors else "shown"
        if errors:
            fields["errors"] = {name: [e.get("string", "") for e in items if isinstance(e, dict)]
                                for name, items in errors.items() if isinstance(items, list)}
    elif isinstance(outcome, Denied):
        fields.update(result="denied", reason=outcome.message)
    elif isinstance(outcome, Restart):
        fields.update(result="restart", keep_context=outcome.keep_context)
    else:
        fields["result"] = "passed"
    LOGGER.debug("flow stage", extra=fields)


def execute(flow: Flow, req: FlowRequest, stored: dict | None, seed_context: dict | None = None, *,
            executor: Executor | None = None) -> FlowResult:
    """One request. ``executor``: the run's executor for its next request (``Executor.next_request``)."""
    if executor is None:
        executor = Executor(flow, req)
    else:
        executor.next_request(req)
    result = executor.run(stored, seed_context)
    for event in result.effects.events:
        record(**event)
    return result
