"""REST API for RADIUS providers and the RADIUS outpost's configuration
(authentik ``authentik/providers/radius/api/providers.py``; reference §4.1, §4.3)."""

from __future__ import annotations

import ipaddress

from django.db.models import Q
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.accounts.api import ProviderSerializer
from core.api.fields import application_of
from core.api.outpost_config import OutpostAuthenticateMixin, OutpostConfigViewSet, check_access_schema
from core.providers.radius.models import RadiusProvider


def validate_client_networks(value: str) -> str:
    for cidr in (c.strip() for c in value.split(",")):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise serializers.ValidationError(f"{cidr!r} is not a network: give comma-separated CIDRs, "
                                              "e.g. 10.0.0.0/8, 192.168.1.0/24") from None
    return value


class RadiusProviderSerializer(ProviderSerializer):
    client_networks = serializers.CharField(required=False, validators=[validate_client_networks])
    outpost_set = serializers.SerializerMethodField()

    class Meta:
        model = RadiusProvider
        fields = [*ProviderSerializer.Meta.fields, "client_networks", "shared_secret", "mfa_support", "certificate",
                  "require_message_authenticator", "outpost_set"]

    def get_outpost_set(self, obj) -> list[str]:
        return [f"{o.pk}" for o in obj.outposts.all()]


class RadiusProviderViewSet(viewsets.ModelViewSet):
    queryset = RadiusProvider.objects.select_related("application").prefetch_related("outposts")
    serializer_class = RadiusProviderSerializer
    filterset_fields = ["name", "authorization_flow", "client_networks"]
    search_fields = ["name", "client_networks"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]


class RadiusOutpostConfigSerializer(serializers.ModelSerializer):
    """Reference §4.1, field names exact; require_message_authenticator is Gatehouse's (THREATS 16)."""

    pk = serializers.IntegerField(read_only=True)
    application_slug = serializers.SerializerMethodField()
    auth_flow_slug = serializers.SerializerMethodField()
    certificate = serializers.SerializerMethodField()

    class Meta:
        model = RadiusProvider
        fields = ["pk", "name", "application_slug", "auth_flow_slug", "client_networks", "shared_secret",
                  "mfa_support", "certificate", "require_message_authenticator"]

    def get_application_slug(self, obj) -> str:
        app = application_of(obj) or obj.backchannel_application.first()
        return app.slug if app else ""

    def get_auth_flow_slug(self, obj) -> str | None:
        return obj.authorization_flow.slug if obj.authorization_flow_id else None

    def get_certificate(self, obj) -> str | None:
        return str(obj.certificate_id) if obj.certificate_id else None


class RadiusOutpostConfigViewSet(OutpostAuthenticateMixin, OutpostConfigViewSet):
    queryset = (RadiusProvider.objects
                .filter(Q(application__isnull=False) | Q(backchannel_application__isnull=False)).distinct()
                .select_related("application", "authorization_flow"))
    serializer_class = RadiusOutpostConfigSerializer
    outpost_actions = {"list", "retrieve", "authenticate"}
    outpost_kind = "radius"

    @check_access_schema("RadiusCheckAccess", {"attributes": serializers.CharField(allow_blank=True)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def check_access(self, request, pk=None):
        """May the user whose session the provider's outpost sends use the application behind this provider
        (only that outpost is answered, OutpostConfigViewSet.access_for). ``attributes`` is the
        base64 RADIUS packet of property-mapping attributes; Gatehouse has none yet, so it is ""."""
        _provider, _app, passing, messages = self.access_for(request, pk)
        return Response({"access": {"passing": passing, "messages": messages, "log_messages": []},
                         "attributes": ""})
