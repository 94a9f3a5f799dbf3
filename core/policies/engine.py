"""The policy engine: the bindings of a PolicyBindingModel (application, flow, flow-stage binding).

A binding names a policy, a group (membership, nested groups included) or a user. Disabled
bindings are ignored; ``negate`` flips a result; an exception while evaluating a policy yields the
binding's ``failure_result`` and a ``policy_exception`` event; results combine by the target's
``policy_engine_mode`` (any / all). No bindings -> passing. (authentik ``authentik/policies/engine.py``.)
"""

from __future__ import annotations

import logging
import time

from core.events.record import record
from core.inheritance import concrete
from core.metrics import engine_metrics
from core.policies import expression, password
from core.policies.models import ExpressionPolicy, PasswordPolicy, Policy, PolicyBinding, ReputationPolicy
from core.policies.types import HttpContext, PolicyRequest, PolicyResult
from outpost.logs import TRACE

LOGGER = logging.getLogger("gatehouse.policies")

__all__ = ["HttpContext", "PolicyRequest", "PolicyResult", "evaluate", "evaluate_policy", "load_bindings",
           "load_bindings_of", "user_has_access"]


def _user(user):
    return user if user is not None and getattr(user, "pk", None) else None


def evaluate_policy(policy: Policy, request: PolicyRequest, timeout: float = 30) -> PolicyResult:
    """One policy, concretely typed. Raises on error (the caller applies failure_result)."""
    policy = concrete(policy)
    if isinstance(policy, ExpressionPolicy):
        return expression.evaluate(policy.expression, request, timeout=timeout)
    if isinstance(policy, PasswordPolicy):
        return password.evaluate(policy, request)
    if isinstance(policy, ReputationPolicy):
        return _reputation(policy, request)
    raise TypeError(f"policy {policy.name!r} has no evaluator (kind {type(policy).__name__})")


def _reputation(policy: ReputationPolicy, request: PolicyRequest) -> PolicyResult:
    from core.policies import reputation

    http = request.http_request or HttpContext()
    passing = True
    if policy.check_ip:
        passing &= reputation.score_for_ip(http.client_ip) > policy.threshold
    if policy.check_username:
        user = _user(request.user)
        identifier = user.username if user else request.context.get("pending_user_identifier", "")
        passing &= reputation.score_for_username(identifier) > policy.threshold
    return PolicyResult(passing, () if passing else ("Too many failed attempts.",))


def _target(target) -> str:
    """A target for log lines, without a query: ``Flow default-authentication-flow``, ``FlowStageBinding 12``."""
    return f"{type(target).__name__} {getattr(target, 'slug', None) or getattr(target, 'name', None) or target.pk}"


def _binding_result(binding: PolicyBinding, request: PolicyRequest, group_ids: set, level: int) -> PolicyResult:
    user = _user(request.user)
    if binding.group_id is not None:
        subject = {"group": str(binding.group_id)}
        result = PolicyResult(binding.group_id in group_ids)
    elif binding.user_id is not None:
        subject = {"user": str(binding.user_id)}
        result = PolicyResult(user is not None and binding.user_id == user.pk)
    elif binding.policy_id is not None:
        subject = {"policy": binding.policy.name}
        started = time.perf_counter()
        try:
            result = evaluate_policy(binding.policy, request, timeout=binding.timeout or 30)
        except Exception as exc:  # noqa: BLE001 - any error in admin-authored code -> failure_result
            LOGGER.warning("policy %s failed: %s", binding.policy.name, exc)
            http = request.http_request or HttpContext()
            record("policy_exception", user=user, client_ip=http.client_ip or None,
                   message=f"{type(exc).__name__}: {exc}", policy=binding.policy.name,
                   binding=str(binding.pk))
            result = PolicyResult(binding.failure_result, (f"Policy {binding.policy.name!r} failed.",))
        engine_metrics().policy(binding, request.obj, time.perf_counter() - started)
    else:  # the check constraint forbids this; fail closed anyway
        subject = {}
        result = PolicyResult(False)
    if binding.negate:
        result = PolicyResult(not result.passing, result.messages)
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, "policy binding", extra={
            "target": _target(request.obj) if request.obj is not None else "", "binding": str(binding.pk),
            "order": binding.order, **subject, "negate": binding.negate, "passing": result.passing,
            "messages": list(result.messages), "user": getattr(user, "username", "")})
    return result


def load_bindings(target) -> list[PolicyBinding]:
    """The enabled bindings of ``target`` in evaluation order, each policy already resolved to its concrete
    kind. Pass the list to ``evaluate`` / ``user_has_access`` to evaluate one target for many users (the
    proxy outpost's access lists): the queries then depend on the bindings, never on the users.

    One query for the bindings; policies are resolved only when there are some (most flow-stage bindings
    have none, and joining every policy table into that query costs more than it saves)."""
    bindings = list(PolicyBinding.objects.filter(target_id=target.pk, enabled=True)
                    .select_related("policy").order_by("order", "pk"))
    for binding in bindings:
        if binding.policy_id is not None:
            binding.policy = concrete(binding.policy)
    return bindings


def load_bindings_of(target_pks) -> dict:
    """``load_bindings`` for several targets (by pk) in one query: target pk -> its bindings (empty list: none)."""
    found: dict = {pk: [] for pk in target_pks}
    if not found:
        return found
    for binding in (PolicyBinding.objects.filter(target_id__in=list(found), enabled=True)
                    .select_related("policy").order_by("order", "pk")):
        if binding.policy_id is not None:
            binding.policy = concrete(binding.policy)
        found[binding.target_id].append(binding)
    return found


def evaluate(target, user, request_context: PolicyRequest | dict | None = None, *,
             bindings: list[PolicyBinding] | None = None, many: bool | None = None) -> PolicyResult:
    """Evaluate every enabled binding of ``target`` for ``user``; ``bindings``: from ``load_bindings(target)``.

    Group bindings use ``user.all_groups()``, which is cached on the instance (pre-filled for many users by
    core/api/outpost_config.py ``load_access_users``). ``many``: one of many users against pre-loaded bindings
    (log lines at trace); by default, whether ``bindings`` were passed."""
    started = time.perf_counter()
    try:
        return _evaluate(target, user, request_context, bindings, bindings is not None if many is None else many)
    finally:
        engine_metrics().engine(target, time.perf_counter() - started)


def _evaluate(target, user, request_context, bindings, many: bool) -> PolicyResult:
    # One user at a time: a login, a page, a check_access (debug); many users against pre-loaded bindings: an
    # outpost's access lists (trace, or a refresh would print a line per user and application).
    level = TRACE if many else logging.DEBUG
    if isinstance(request_context, PolicyRequest):
        request = request_context
        request.user = user
    elif hasattr(request_context, "META"):  # a Django HttpRequest from a view: keep only plain values
        from core.client_ip import client_ip

        request = PolicyRequest(user=user, http_request=HttpContext(
            client_ip=client_ip(request_context), user_agent=request_context.META.get("HTTP_USER_AGENT", ""),
            host=request_context.get_host(), path=request_context.path, query=request_context.GET.dict()))
    else:
        request = PolicyRequest(user=user, context=dict(request_context or {}))
    if request.obj is None:
        request.obj = target
    if bindings is None:
        bindings = load_bindings(target)
    if not bindings:
        return PolicyResult(True)
    u = _user(user)
    group_ids = {g.pk for g in u.all_groups()} if u is not None else set()
    results = [_binding_result(b, request, group_ids, level) for b in bindings]
    mode = getattr(target, "policy_engine_mode", "any")
    passing = all(r.passing for r in results) if mode == "all" else any(r.passing for r in results)
    messages = tuple(m for r in results for m in r.messages)
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, "policy result", extra={
            "target": _target(target), "mode": mode, "bindings": len(bindings), "passing": passing,
            "messages": list(messages), "user": getattr(u, "username", "")})
    return PolicyResult(passing, messages)


INTERACTIVE_USER_TYPES = ("internal", "external")


def user_has_access(user, application, request_context: PolicyRequest | dict | None = None, *,
                    request=None, bindings: list[PolicyBinding] | None = None) -> tuple[bool, list[str]]:
    """May ``user`` use ``application``? Inactive users and service accounts may not (interactively).

    ``request`` is accepted as an alias of ``request_context`` (core/api/access.py passes it);
    ``bindings``: ``load_bindings(application)``, loaded once when asking for many users.
    """
    u = _user(user)
    if u is None:
        return False, ["not authenticated"]
    if not u.is_active:
        return False, ["user is inactive"]
    if u.type not in INTERACTIVE_USER_TYPES:
        return False, ["service accounts may not use applications interactively"]
    context = request_context if request_context is not None else request
    if isinstance(context, PolicyRequest):
        context.obj = application
    result = evaluate(application, u, context, bindings=bindings)
    messages = list(result.messages)
    if not result.passing and not messages:
        messages = [f"access to {application.name!r} denied by its bindings"]
    return result.passing, messages
