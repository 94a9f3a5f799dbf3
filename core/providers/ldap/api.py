"""REST API for LDAP providers and the LDAP outpost's configuration
(authentik ``authentik/providers/ldap/api.py``; reference §3.1, §3.2)."""

from __future__ import annotations

import logging

from django.db.models import Q
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from core.accounts.api import ProviderSerializer
from core.api.fields import IEXACT, application_of
from core.api.outpost_config import OutpostAuthenticateMixin, OutpostConfigViewSet, check_access_schema
from core.api.permissions import request_outpost
from core.api.schema import LDAP_MODES as MODES
from core.providers.ldap.models import LDAPProvider

LOGGER = logging.getLogger("gatehouse.providers.ldap")


class LDAPProviderSerializer(ProviderSerializer):
    search_mode = serializers.ChoiceField(choices=MODES, default="direct")
    bind_mode = serializers.ChoiceField(choices=MODES, default="direct")
    outpost_set = serializers.SerializerMethodField()

    class Meta:
        model = LDAPProvider
        fields = [*ProviderSerializer.Meta.fields, "base_dn", "certificate", "tls_server_name", "uid_start_number",
                  "gid_start_number", "search_mode", "bind_mode", "mfa_support", "search_full_directory",
                  "require_tls", "outpost_set"]

    def get_outpost_set(self, obj) -> list[str]:
        return [f"{o.pk}" for o in obj.outposts.all()]

    def validate_base_dn(self, value):
        parts = [p.strip() for p in value.split(",")]
        if not value.strip() or any("=" not in p or not p.split("=", 1)[1] for p in parts):
            raise serializers.ValidationError(f"base_dn {value!r} must be a DN like DC=ldap,DC=example,DC=com")
        return value


class LDAPProviderViewSet(viewsets.ModelViewSet):
    queryset = LDAPProvider.objects.select_related("application").prefetch_related("outposts")
    serializer_class = LDAPProviderSerializer
    # ours (exact) and authentik's (__iexact) names
    filterset_fields = {"name": IEXACT, "base_dn": IEXACT, "authorization_flow": ["exact"],
                        "authorization_flow__slug": ["iexact"], "search_mode": ["exact"], "bind_mode": ["exact"],
                        "certificate__kp_uuid": ["iexact"], "certificate__name": ["iexact"],
                        "tls_server_name": ["iexact"], "uid_start_number": ["iexact"], "gid_start_number": ["iexact"],
                        "application": ["isnull"]}
    search_fields = ["name", "base_dn"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]


class LDAPOutpostConfigSerializer(serializers.ModelSerializer):
    """Reference §3.1, field names exact; require_tls is Gatehouse's addition (THREATS 18)."""

    pk = serializers.IntegerField(read_only=True)
    bind_flow_slug = serializers.SerializerMethodField()
    unbind_flow_slug = serializers.SerializerMethodField()
    application_slug = serializers.SerializerMethodField()
    certificate = serializers.SerializerMethodField()

    class Meta:
        model = LDAPProvider
        fields = ["pk", "name", "base_dn", "bind_flow_slug", "unbind_flow_slug", "application_slug", "certificate",
                  "tls_server_name", "uid_start_number", "gid_start_number", "search_mode", "bind_mode",
                  "mfa_support", "require_tls"]

    def get_bind_flow_slug(self, obj) -> str | None:
        return obj.authorization_flow.slug if obj.authorization_flow_id else None

    def get_unbind_flow_slug(self, obj) -> str | None:
        return obj.invalidation_flow.slug if obj.invalidation_flow_id else None

    def get_application_slug(self, obj) -> str:
        backchannel = obj.backchannel_application.first()
        if backchannel is not None:
            return backchannel.slug
        app = application_of(obj)
        return app.slug if app else ""

    def get_certificate(self, obj) -> str | None:
        return str(obj.certificate_id) if obj.certificate_id else None


class LDAPOutpostConfigViewSet(OutpostAuthenticateMixin, OutpostConfigViewSet):
    queryset = (LDAPProvider.objects
                .filter(Q(application__isnull=False) | Q(backchannel_application__isnull=False)).distinct()
                .select_related("application", "authorization_flow", "invalidation_flow"))
    serializer_class = LDAPOutpostConfigSerializer
    outpost_actions = {"list", "retrieve", "authenticate", "unbind"}
    outpost_kind = "ldap"

    @extend_schema(request=inline_serializer("LDAPUnbindRequest", {
        "session_id": serializers.CharField(), "remote_ip": serializers.IPAddressField()}),
        responses=inline_serializer("LDAPUnbindAnswer", {"ended": serializers.BooleanField(),
                                                         "reason": serializers.CharField()}), filters=False)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def unbind(self, request, pk=None):
        """An LDAP unbind on a connection whose bind opened core session ``session_id`` (its sid): the provider's
        unbind flow (``invalidation_flow``) runs on that session, as authentik's outpost runs it with the bind's
        session cookie. No unbind flow: nothing is done. Only the provider's outpost may ask."""
        from core.flows.outpost_login import Unbind, unbind

        outpost = request_outpost(request)
        if outpost is None:
            raise PermissionDenied("unbind answers only the outpost that uses the provider: send its token as "
                                   "Authorization: Bearer <outpost token>")
        provider = self.bound_provider(outpost, pk, "invalidation_flow")
        session_id, remote_ip = request.data.get("session_id"), request.data.get("remote_ip") or ""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 128:
            raise ValidationError({"session_id": ["required: the session_id the bind's authenticate answer gave"]})
        if not isinstance(remote_ip, str) or len(remote_ip) > 64:
            raise ValidationError({"remote_ip": ["the LDAP client's address"]})
        if provider.invalidation_flow is None:
            ended, reason = False, "the provider has no unbind flow (invalidation_flow)"
        else:
            ended, reason = unbind(provider.invalidation_flow,
                                   Unbind(sid=session_id, client_ip=remote_ip, outpost_user=request.user))
        LOGGER.info("ldap unbind", extra={"provider": provider.name, "outpost": outpost.name, "ended": ended,
                                          "reason": reason, "client_ip": remote_ip})
        return Response({"ended": ended, "reason": reason})

    def answer_extras(self, provider, user) -> dict:
        """The search permission (as check_access): superusers, or everyone when the provider says so."""
        return {"has_search_permission": bool(user.is_superuser or provider.search_full_directory)}

    @check_access_schema("LDAPCheckAccess", {"has_search_permission": serializers.BooleanField()}, "outposts_ldap_access_check")
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def check_access(self, request, pk=None):
        """May the user whose session the provider's outpost sends use the application behind this provider;
        may they search everything? Only that outpost is answered (OutpostConfigViewSet.access_for).

        ``has_search_permission``: superusers, or everyone when the provider sets search_full_directory.
        """
        provider, _app, passing, messages = self.access_for(request, pk)
        return Response({
            "access": {"passing": passing, "messages": messages, "log_messages": []},
            "has_search_permission": bool(passing and (request.user.is_superuser or provider.search_full_directory)),
        })
