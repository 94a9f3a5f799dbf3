"""A provider's bind flow run for an outpost inside one call (LDAP bind, RADIUS Access-Request; issues 9, 10).

authentik's LDAP and RADIUS outposts drive ``/api/v3/flows/executor/<slug>/`` over HTTP, one round trip per
stage, then ask ``check_access`` as the user (reference §1.7, §3.2, §4.3): five to eight requests a bind.
Gatehouse's outposts send one POST (``/api/v3/outposts/{ldap,radius}/<pk>/authenticate/``) and the core runs
the same thing here, in process: every step is a call of the executor (``core.flows.executor.execute``, the
code behind the executor API and the login page) followed by the API view's own effect applier
(``core.flows.views.apply``), so planning, the flow's and the stages' policies, the login rate limit, the
``login``/``login_failed`` events, the session and its AuthenticatedSession row are exactly those of a web login.
Nothing here checks a password or a code: the stages do.

The answers are authentik's outpost solvers' (reference §1.7):
- ``ak-stage-identification``: the name, and the password beside it (used when a password stage is attached);
- ``ak-stage-password``: the password;
- ``ak-stage-authenticator-validate``: the code, tried against the user's TOTP and static devices (the stage
  does that when no challenge is selected; authentik's solver selects the first of them, which makes a static
  code fail for a user who also has TOTP). WebAuthn and Duo cannot be answered over LDAP/RADIUS;
- ``ak-stage-user-login``: ``remember_me`` true;
- anything else (a prompt, consent, captcha, enrolment of a first authenticator) -> ``flow_error``.

The code and ``mfa_support`` (``protocols.outpost.split_mfa``, authentik's SetSecrets): with ``mfa_support`` on,
``secret;123456`` is the password ``secret`` and the code ``123456``. With it off, authentik offers the whole
password as the code too, so a flow whose only factor is an authenticator stage works; it offers it even after
a password stage has accepted it as the password, which records a failed second factor (and counts towards the
user's rate limit) on every bind of a user with a device. Here the whole password is offered as the code only
when no stage took it as a password in this run; otherwise the answer is ``mfa_required`` and nothing is
counted (the reason says to turn ``mfa_support`` on).

Outcomes (``protocols.outpost.AuthResult``):
- ``invalid_credentials``: the identification or password stage refused (wrong password, unknown or inactive
  user: the stages answer them alike), or the login rate limit refused the attempt (the reason says so);
- ``mfa_required``: the user has a second factor and no code came, or the code was wrong;
- ``access_denied``: a decision -- the flow does not apply (its policies), a stage denied (a deny stage, an
  inactive user at login), or the application's bindings refuse the user (checked before the session opens,
  so a refused user gets no session);
- ``flow_error``: the flow could not be run to a decision -- none is set, a stage needs a browser, the flow ended
  without logging anyone in, or the core failed (a ``system_exception`` event, as the executor API records);
- ``ok``: the user-login stage opened a core session and the application lets the user in.

A stage shown a second time after it was answered (``invalid_response_action`` restart) ends the run with that
stage's failure: one call checks one password at most once, never loops.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpRequest

from core.accounts.models import Application, AuthenticatedSession, User
from core.accounts.sessions import session_store
from core.events.record import record
from core.flows.executor import Executor, FlowResult, execute
from core.flows.models import Flow
from core.flows.planner import SESSION_KEY_PLAN, FlowRequest
from core.flows.views import apply
from core.policies.engine import user_has_access
from core.policies.types import PolicyRequest
from protocols.outpost import AuthResult, split_mfa

LOGGER = logging.getLogger("gatehouse.flows")
MAX_STEPS = 20  # executor calls in one run: a flow of ~5 stages needs ~8; authentik's client stops at 10 stages

IDENTIFICATION = "ak-stage-identification"
PASSWORD = "ak-stage-password"  # noqa: S105 - a component name
VALIDATE = "ak-stage-authenticator-validate"
USER_LOGIN = "ak-stage-user-login"
USER_LOGOUT = "xak-user-logout"  # core/flows/stages/user_logout.py
ACCESS_DENIED = "ak-stage-access-denied"
REDIRECT = "xak-flow-redirect"
CODE_CLASSES = ("static", "totp")


@dataclass
class Outcome:
    result: AuthResult
    reason: str
    user: User | None = None
    session: AuthenticatedSession | None = None
    timings: dict = field(default_factory=dict)  # name -> ms, what the stages measured (the password hash)


@dataclass(frozen=True)
class Call:
    """Who asks, for whom, from where: everything of the outpost's request the run needs."""

    kind: str  # "ldap" | "radius": the flow sees query goauthentik.io/outpost/<kind>=true, as authentik's
    username: str
    password: str = field(repr=False)  # as the client sent it, ";code" included; split here with the provider's mfa_support
    mfa_support: bool
    client_ip: str  # the end client's address, delegated by the outpost
    client_peer: str  # the outpost's own address when it differs (the rate limit caps what one peer vouches for)
    outpost_user: User  # the outpost's service account: require_outpost flows, context["outpost"]
    user_agent: str = ""
    host: str = ""
    scheme: str = "https"

    def __repr__(self) -> str:  # never the password
        return f"Call(kind={self.kind!r}, username={self.username!r}, client_ip={self.client_ip!r})"


def _detached_request(call: Call) -> HttpRequest:
    """The request the effect applier works on: a fresh session of the configured engine that no browser holds.
    The login rotates its key and saves it; its sha256 is the ``session_id`` the outpost keeps (SESSION_END).
    The session key itself never leaves the core."""
    request = HttpRequest()
    request.method = "POST"
    request.META.update({"REMOTE_ADDR": call.client_ip, "HTTP_USER_AGENT": call.user_agent[:512],
                         "SERVER_NAME": call.host or "localhost", "SERVER_PORT": "443"})
    request.session = session_store()()
    request.user = AnonymousUser()
    return request


def _fail_reason(component: str | None, errors: dict) -> tuple[AuthResult, str]:
    """The outcome for a stage that answered our answer with response_errors (or showed itself again)."""
    items = [e for errs in (errors or {}).values() if isinstance(errs, list) for e in errs if isinstance(e, dict)]
    text = "; ".join(str(e.get("string", "")) for e in items) or "the stage refused the answer"
    if any(e.get("code") == "throttled" for e in items):
        return AuthResult.INVALID_CREDENTIALS, f"rate limited: {text}"
    if component in (IDENTIFICATION, PASSWORD):
        return AuthResult.INVALID_CREDENTIALS, text
    if component == VALIDATE:
        return AuthResult.MFA_REQUIRED, f"second factor refused: {text}"
    return AuthResult.FLOW_ERROR, f"stage {component} refused the answer: {text}"


class _Run:
    def __init__(self, flow: Flow, application: Application, call: Call):
        self.flow, self.application, self.call = flow, application, call
        self.password, self.code = split_mfa(call.password, call.mfa_support)
        self.password_used = False  # a stage took the password as a password in this run
        self.answered: set[str] = set()
        self.timings: dict = {}
        self.request = _detached_request(call)
        self.req = FlowRequest(
            method="GET", data={}, user=None, client_ip=call.client_ip, client_peer=call.client_peer,
            user_agent=call.user_agent[:512], host=call.host, base_url=f"{call.scheme}://{call.host}",
            path=f"/api/v3/flows/executor/{flow.slug}/", query={f"goauthentik.io/outpost/{call.kind}": "true"},
            outpost_user=call.outpost_user)
        self.executor = Executor(flow, self.req)  # one per run: users and stages load once, as in one request
        self.user: User | None = None
        self.session: AuthenticatedSession | None = None

    def outcome(self, result: AuthResult, reason: str) -> Outcome:
        if result is not AuthResult.OK and self.session is not None:
            # The flow logged the user in and then refused (a stage after the login): no session stays open.
            AuthenticatedSession.objects.filter(pk=self.session.pk).delete()  # SESSION_END to outposts
            self.session = None
        return Outcome(result, reason, self.user if result is AuthResult.OK else None, self.session, self.timings)

    def step(self, method: str, answer: dict) -> FlowResult:
        req = dataclasses.replace(self.req, method=method, data=answer)
        with transaction.atomic():
            result = execute(self.flow, req, self.request.session.get(SESSION_KEY_PLAN), executor=self.executor)
        self.timings.update(result.effects.timings)
        return result

    def run(self) -> Outcome:
        method, answer = "GET", {}
        for _ in range(MAX_STEPS):
            result = self.step(method, answer)
            if result.effects.login is not None:
                refused = self.refuse_login(result)
                if refused is not None:
                    return refused
            apply(self.request, dataclasses.replace(self.req, method=method), result)
            if result.effects.login is not None:
                self.opened(result)
            if result.kind == "stage_redirect":
                method, answer = "GET", {}
                continue
            challenge = result.challenge or {}
            component = challenge.get("component")
            if method == "POST" and challenge.get("response_errors"):
                return self.outcome(*_fail_reason(component, challenge["response_errors"]))
            if component == REDIRECT:
                return self.finished()
            if component == ACCESS_DENIED:
                return self.outcome(AuthResult.ACCESS_DENIED, str(challenge.get("error_message") or "access denied"))
            if component in self.answered:  # shown again after our answer: the binding restarted the flow
                return self.outcome(*_fail_reason(component, {}))
            solved = self.solve(challenge)
            if isinstance(solved, Outcome):
                return solved
            self.answered.add(component)
            method, answer = "POST", solved
        return self.outcome(AuthResult.FLOW_ERROR, f"flow {self.flow.slug!r} took more than {MAX_STEPS} steps")

    def solve(self, challenge: dict) -> dict | Outcome:
        component = challenge.get("component")
        if component == IDENTIFICATION:
            if challenge.get("password_fields"):
                self.password_used = True
            return {"component": component, "uid_field": self.call.username, "password": self.password}
        if component == PASSWORD:
            self.password_used = True
            return {"component": component, "password": self.password}
        if component == VALIDATE:
            return self.solve_validate(challenge)
        if component == USER_LOGIN:
            return {"component": component, "remember_me": True}
        return self.outcome(AuthResult.FLOW_ERROR, f"flow {self.flow.slug!r} has a stage ({component}) that "
                            "LDAP and RADIUS clients cannot answer: give the provider a bind flow of identification, "
                            "password, authenticator validation (TOTP/static) and user login stages")

    def solve_validate(self, challenge: dict) -> dict | Outcome:
        classes = [c.get("device_class") for c in challenge.get("device_challenges") or [] if isinstance(c, dict)]
        if not any(c in CODE_CLASSES for c in classes):
            return self.outcome(AuthResult.MFA_REQUIRED, f"the user's authenticators ({', '.join(classes) or 'none'})"
                                " cannot be used here: LDAP and RADIUS accept TOTP and static codes only")
        code = self.code
        if code is not None and not self.call.mfa_support and self.password_used:
            code = None  # the whole password again (mfa_support off): never offered as a code (module docstring)
        if not code:
            how = "append ;<code> to the password" if self.call.mfa_support else \
                "turn on the provider's mfa_support and append ;<code> to the password"
            return self.outcome(AuthResult.MFA_REQUIRED, f"the user has a second factor: {how}")
        return {"component": VALIDATE, "code": code}

    def refuse_login(self, result: FlowResult) -> Outcome | None:
        """The application access check, made when the user-login stage wants to log the user in and before
        the session opens: a refused user gets no session. None: the user may use the application."""
        user = self.executor.users.get(result.effects.login.user_pk) or \
            User.objects.filter(pk=result.effects.login.user_pk).first()
        if user is None:
            return self.outcome(AuthResult.FLOW_ERROR, "the user to log in no longer exists")
        self.user = user
        context = PolicyRequest(user=user, http_request=self.req.http_context(), obj=self.application)
        passing, messages = user_has_access(user, self.application, context)
        if passing:
            return None
        return self.outcome(AuthResult.ACCESS_DENIED, "; ".join(str(m) for m in messages)
                            or f"access to {self.application.name!r} denied")

    def opened(self, result: FlowResult) -> None:
        key = self.request.session.session_key
        self.session = AuthenticatedSession.objects.filter(session_key=key).first() if key else None

    def finished(self) -> Outcome:
        if self.session is None or self.user is None:
            if not self.answered:  # ended before asking anything: a flow that does not apply, denied_action continue
                return self.outcome(AuthResult.ACCESS_DENIED, f"flow {self.flow.slug!r} does not apply to this login")
            return self.outcome(AuthResult.FLOW_ERROR, f"flow {self.flow.slug!r} ended without logging the user in:"
                                " it needs a user login stage")
        self.request.session.save()  # the auth keys the login wrote (a browser's session is saved by the middleware)
        return self.outcome(AuthResult.OK, "authenticated")


def authenticate(flow: Flow | None, application: Application, call: Call) -> Outcome:
    """Run ``flow`` for ``call`` and check ``application``: one Outcome, never an exception for a failed login.
    An exception inside the core is a ``flow_error`` (and a ``system_exception`` event, as the executor API)."""
    if flow is None:
        return Outcome(AuthResult.FLOW_ERROR, "the provider has no bind flow (authorization_flow): set one")
    run = _Run(flow, application, call)
    try:
        return run.run()
    except Exception as exc:  # noqa: BLE001 - an answer and an event; never a pass
        LOGGER.exception("outpost login through flow %s failed", flow.slug)
        record("system_exception", client_ip=call.client_ip, message=f"{type(exc).__name__} in flow {flow.slug}")
        try:
            return run.outcome(AuthResult.FLOW_ERROR, f"the core failed running flow {flow.slug!r}")
        except Exception:  # noqa: BLE001 - the session clean-up failed too (the database is away)
            return Outcome(AuthResult.FLOW_ERROR, f"the core failed running flow {flow.slug!r}")


@dataclass(frozen=True)
class Unbind:
    """What an LDAP unbind asked the core for: end session ``sid`` through ``flow`` (the provider's unbind flow)."""

    sid: str
    client_ip: str
    outpost_user: User


def unbind(flow: Flow, call: Unbind) -> tuple[bool, str]:
    """Run the provider's unbind (invalidation) flow on the session an LDAP bind opened, as authentik's outpost
    does with the bind's session cookie: its stages run with that session and user (the default flow's
    user_logout stage ends it, so outposts get SESSION_END). (ended, reason); never an exception."""
    row = AuthenticatedSession.objects.filter(sid=call.sid).select_related("user").first()
    if row is None:
        return False, "the session has already ended"
    request = HttpRequest()
    request.method = "POST"
    request.META.update({"REMOTE_ADDR": call.client_ip, "SERVER_NAME": "localhost", "SERVER_PORT": "443"})
    request.session = session_store()(row.session_key)
    request.user = row.user
    base = FlowRequest(method="GET", data={}, user=row.user, client_ip=call.client_ip, outpost_user=call.outpost_user)
    req, confirmed = base, False
    try:
        for _ in range(MAX_STEPS):
            with transaction.atomic():
                result = execute(flow, req, request.session.get(SESSION_KEY_PLAN))
            apply(request, req, result)
            component = (result.challenge or {}).get("component")
            if result.kind == "stage_redirect":
                req = base
            elif component == USER_LOGOUT and not confirmed:
                # The stage asks a browser to confirm (a cross-site GET must not sign anyone out); the client's own
                # unbind, relayed by its outpost, is that confirmation.
                req, confirmed = dataclasses.replace(base, method="POST", data={"component": USER_LOGOUT}), True
            else:
                break
    except Exception as exc:  # noqa: BLE001 - an answer and an event; never a 500 for the client's unbind
        LOGGER.exception("LDAP unbind through flow %s failed", flow.slug)
        record("system_exception", client_ip=call.client_ip, message=f"{type(exc).__name__} in flow {flow.slug}")
        return False, f"the core failed running flow {flow.slug!r}"
    if AuthenticatedSession.objects.filter(sid=call.sid).exists():
        return False, f"flow {flow.slug!r} did not end the session (it stopped at {component or result.kind})"
    return True, ""
