"""The provider-config viewsets the outposts poll, their ``check_access`` answer, and the LDAP/RADIUS
``authenticate`` call."""

from __future__ import annotations

import logging
import time

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import (
    NotFound,
    ParseError,
    PermissionDenied,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.response import Response

from core.accounts.models import Application
from core.api.access import user_has_access
from core.api.permissions import ScopedQuerysetMixin, ViewAccess, request_outpost
from protocols.outpost import AuthAnswer, AuthGroup, AuthRequest, AuthResult, AuthUser, ProtocolError
from protocols.proxy_provider import Access

LOGGER = logging.getLogger("gatehouse.outposts")


class PolicyTestResultSerializer(serializers.Serializer):
    passing = serializers.BooleanField()
    messages = serializers.ListField(child=serializers.CharField())
    log_messages = serializers.ListField(default=list, child=inline_serializer("LogEvent", {
        "timestamp": serializers.DateTimeField(), "log_level": serializers.CharField(),
        "logger": serializers.CharField(), "event": serializers.CharField(), "attributes": serializers.DictField()}))


APP_SLUG = OpenApiParameter("app_slug", OpenApiTypes.STR, required=True,
                            description="slug of the application that uses this provider")


def check_access_schema(name: str, extra: dict, operation_id: str):
    return extend_schema(operation_id=operation_id, parameters=[APP_SLUG], filters=False,
                         responses=inline_serializer(name, {"access": PolicyTestResultSerializer(), **extra}))


def asking_outpost(request):
    """The outpost behind a request: its service account's API token in ``X-authentik-outpost-token`` (authentik's
    outposts send it with every request of their flow client, the user's session beside it), or its own Bearer."""
    from core.flows.views import delegated_client
    from core.outposts.service import outpost_for_user

    _ip, service_account = delegated_client(request)
    return outpost_for_user(service_account) if service_account is not None else request_outpost(request)


class OutpostConfigViewSet(ScopedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           viewsets.GenericViewSet):
    """Superusers see every provider; an outpost only those attached to it. ``check_access`` answers only the
    outpost a provider is attached to, about the user whose session it sends (issue 8 item 11: it told any
    signed-in user the providers' names); everyone else gets 403 whatever the pk, so it reveals nothing."""

    permission_classes = [ViewAccess]
    outpost_actions = {"list", "retrieve"}
    user_actions = {"check_access"}
    filterset_fields = ["name"]
    search_fields = ["name"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]

    def scope_outpost(self, qs, outpost):
        return qs.filter(outposts=outpost)

    def bound_provider(self, outpost, pk, *related: str):
        """The provider ``pk`` when it is bound to ``outpost``; else 404 (the same whether it exists or not)."""
        found = (self.queryset.model.objects.filter(pk=pk, outposts=outpost).select_related(*related).first()
                 if str(pk).isdigit() else None)
        if found is None:
            raise NotFound(f"no {self.queryset.model._meta.verbose_name} with pk {pk!r} on outpost {outpost.name!r}")
        return found

    def access_for(self, request, pk):
        """(provider, application, passing, messages) for ``request.user`` and ``?app_slug=``, asked by the
        provider's outpost."""
        outpost = asking_outpost(request)
        if outpost is None:
            raise PermissionDenied("check_access answers only the outpost that uses the provider: it sends its "
                                   "token in X-authentik-outpost-token with the user's session")
        provider = self.bound_provider(outpost, pk)
        slug = request.query_params.get("app_slug", "")
        if not slug:
            raise ValidationError({"app_slug": ["required: the slug of the application that uses this provider"]})
        app = (Application.objects.filter(slug=slug)
               .filter(Q(provider=provider) | Q(backchannel_providers=provider)).first())
        if app is None:
            raise NotFound(f"no application {slug!r} uses provider {provider.name!r}")
        passing, messages = user_has_access(request.user, app)
        return provider, app, bool(passing), [str(m) for m in messages]


# --- the one-call authentication of LDAP binds and RADIUS Access-Requests (issues 9, 10) ---------------------

AUTH_REQUEST_SCHEMA = inline_serializer("OutpostAuthenticateRequest", {
    "username": serializers.CharField(), "password": serializers.CharField(),
    "remote_ip": serializers.IPAddressField()})
AUTH_ANSWER_SCHEMA = inline_serializer("OutpostAuthenticateAnswer", {
    "result": serializers.ChoiceField(choices=[r.value for r in AuthResult]),
    "reason": serializers.CharField(),
    "user": serializers.DictField(allow_null=True),
    "session_id": serializers.CharField(allow_null=True),
    "has_search_permission": serializers.BooleanField(),
    "reply_attributes": serializers.ListField(child=serializers.DictField())})


def auth_user(user) -> AuthUser:
    return AuthUser(pk=user.pk, uid=user.uid, username=user.username, name=user.name or "", email=user.email or "",
                    is_active=user.is_active, is_superuser=bool(user.is_superuser),
                    groups=tuple(AuthGroup(pk=str(g.pk), name=g.name) for g in user.groups.order_by("name")),
                    attributes=dict(user.attributes or {}))


class OutpostAuthenticateMixin:
    """``POST <pk>/authenticate/`` (protocols/outpost.py ``AUTHENTICATE_PATHS``): the provider's outpost sends a
    name, the password as the client gave it and the client's address; the core runs the provider's bind flow
    and the application access check in this one request (core/flows/outpost_login.py) and answers an
    ``AuthAnswer``, 200 also for a refused login. Only the outpost the provider is bound to is answered, with its
    own Bearer token: anyone else gets 403, and that outpost asking about another provider 404. The password is
    never logged; one line per call says who, from where, the result and the reason."""

    outpost_kind = ""

    def answer_extras(self, provider, user) -> dict:
        """Kind-specific fields of an ``ok`` answer (``has_search_permission``, ``reply_attributes``)."""
        return {}

    @extend_schema(request=AUTH_REQUEST_SCHEMA, responses=AUTH_ANSWER_SCHEMA, filters=False)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def authenticate(self, request, pk=None):
        from core.client_ip import client_ip
        from core.flows.outpost_login import Call, authenticate

        started = time.perf_counter()
        outpost = request_outpost(request)
        kind = self.queryset.model._meta.verbose_name
        if outpost is None:
            raise PermissionDenied(f"authenticate answers only the outpost that uses the {kind}: send its token as "
                                   "Authorization: Bearer <outpost token>")
        provider = self.bound_provider(outpost, pk, "authorization_flow")
        # The application the outpost's configuration names (application_slug), so this check and authentik's
        # check_access?app_slug= agree.
        slug = self.serializer_class().get_application_slug(provider)
        app = Application.objects.filter(slug=slug).first() if slug else None
        if app is None:
            raise NotFound(f"no application uses provider {provider.name!r}: add one, then bind again")
        if request.content_type != "application/json":
            raise UnsupportedMediaType(request.content_type, f"send the request as application/json, not "
                                                             f"{request.content_type!r}")
        try:
            asked = AuthRequest.from_json(request.data)
        except ProtocolError as exc:
            raise ParseError(str(exc)) from None
        peer = client_ip(request)
        call = Call(kind=self.outpost_kind, username=asked.username, password=asked.password,
                    mfa_support=bool(provider.mfa_support), client_ip=asked.remote_ip,
                    client_peer=peer if peer != asked.remote_ip else "", outpost_user=request.user,
                    user_agent=f"{request.META.get('HTTP_USER_AGENT', '')[:400]} ({self.outpost_kind} outpost "
                               f"{outpost.name})",
                    host=request.get_host(), scheme=request.scheme)
        outcome = authenticate(provider.authorization_flow, app, call)
        if outcome.result is AuthResult.OK:
            answer = AuthAnswer(result=outcome.result, reason=outcome.reason, user=auth_user(outcome.user),
                                session_id=outcome.session.sid, **self.answer_extras(provider, outcome.user))
        else:
            answer = AuthAnswer(result=outcome.result, reason=outcome.reason)
        elapsed = (time.perf_counter() - started) * 1000
        LOGGER.info("outpost authentication", extra={
            "kind": self.outpost_kind, "provider": provider.name, "outpost": outpost.name, "username": asked.username,
            "client_ip": asked.remote_ip, "result": answer.result.value, "reason": answer.reason,
            "duration_ms": round(elapsed, 1)})
        response = Response(answer.to_json())
        timings = {**outcome.timings, "total": elapsed}
        response["Server-Timing"] = ", ".join(f"{name};dur={ms:.1f}" for name, ms in timings.items())
        return response


# --- per-request access for the proxy outpost ---------------------------------------------------------------
# The ``access`` field of /api/v3/outposts/proxy/ (the contract: protocols/proxy_provider.py Access): the outpost
# decides on every request with the snapshot, so revocation and group changes apply at once (THREATS 8, 12).

def subject_for(provider, user) -> str:
    """The OIDC ``sub`` the provider issues for ``user``: the same function the tokens use, so the
    outpost's comparison of a session's ``sub`` with the access lists cannot drift."""
    from core.oidc.claims import subject

    return subject(provider, user)


def load_access_users() -> list:
    """Every user, with ``all_groups()`` pre-filled from two queries (users + memberships prefetched, and
    every group for the parent chains), so evaluating bindings for thousands of users costs no query per
    user for group membership. Inactive users and service accounts are included: they are denied."""
    from core.accounts.models import Group, User

    parents = dict(Group.objects.values_list("pk", "parent_id"))
    groups = {g.pk: g for g in Group.objects.all()}
    users = list(User.objects.prefetch_related("groups"))
    for user in users:
        seen: dict = {}
        for group in user.groups.all():  # the prefetch cache
            node, chain = group.pk, set()
            while node is not None and node not in chain:  # cycles cut, as Group.ancestors()
                chain.add(node)
                seen.setdefault(node, groups[node])
                node = parents.get(node)
        user.__dict__["_all_groups"] = list(seen.values())  # the cache User.all_groups() reads
    return users


def application_access(provider, application, users: list) -> dict:
    """``{"default", "allow_subjects", "deny_subjects"}`` for ``application`` over ``users``.

    No enabled binding -> default allow, every inactive user and service account denied by subject (a short
    list). Bindings -> default deny, allow exactly the users ``user_has_access`` passes (evaluated per user,
    without an HTTP request: expression policies see ``request.http_request`` None). Deny wins at the outpost.
    The bindings are loaded once with their concrete policies and the users' groups come pre-filled
    (``load_access_users``), so the queries do not grow with the users; only a reputation policy (a score
    lookup) or a failing policy (its policy_exception event) still costs one per user.
    """
    from core.policies.engine import INTERACTIVE_USER_TYPES, load_bindings, user_has_access

    def denied_by_state(user) -> bool:
        return not user.is_active or user.type not in INTERACTIVE_USER_TYPES

    bindings = load_bindings(application)  # once: the loop below then costs no query per user
    if not bindings:
        deny = {subject_for(provider, u) for u in users if denied_by_state(u)} - {""}
        return Access(default_allow=True, deny_subjects=frozenset(deny)).to_json()
    allow, deny = set(), set()
    for user in users:
        subject = subject_for(provider, user)
        if not subject:
            continue
        if denied_by_state(user):
            deny.add(subject)
            continue
        passing, _ = user_has_access(user, application, bindings=bindings)
        (allow if passing else deny).add(subject)
    # Two users may share a subject (e.g. the same email in user_email mode): refusing both is the safe side.
    allow -= deny
    return Access(default_allow=False, allow_subjects=frozenset(allow)).to_json()
