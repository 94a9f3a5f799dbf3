"""REST API for RADIUS providers and the RADIUS outpost's configuration
(authentik ``authentik/providers/radius/api/providers.py``; reference §4.1, §4.3)."""

from __future__ import annotations

import ipaddress
import logging

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from core.accounts.api import ProviderSerializer
from core.api.fields import IEXACT, ModelNamesMixin, application_of, validate_expression
from core.api.outpost_config import OutpostAuthenticateMixin, OutpostConfigViewSet, check_access_schema
from core.api.schema import LDAP_MODES as MODES
from core.inheritance import concrete
from core.providers.radius.models import RadiusProvider, RadiusProviderPropertyMapping

LOGGER = logging.getLogger("gatehouse.providers.radius")


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
    bind_mode = serializers.ChoiceField(choices=MODES, default="direct")  # LDAP's name and values (Gatehouse's)
    outpost_set = serializers.SerializerMethodField()

    class Meta:
        model = RadiusProvider
        fields = [*ProviderSerializer.Meta.fields, "client_networks", "shared_secret", "mfa_support", "certificate",
                  "require_message_authenticator", "bind_mode", "outpost_set"]

    def get_outpost_set(self, obj) -> list[str]:
        return [f"{o.pk}" for o in obj.outposts.all()]

    def validate_property_mappings(self, value):
        """Only RADIUS property mappings produce reply attributes: another kind here would do nothing, silently."""
        radius = set(RadiusProviderPropertyMapping.objects.filter(pk__in=[m.pk for m in value])
                     .values_list("pk", flat=True))
        other = [m.name for m in value if m.pk not in radius]
        if other:
            raise serializers.ValidationError(
                f"{', '.join(map(repr, other))}: not a RADIUS property mapping; a RADIUS provider takes mappings "
                "from /api/v3/propertymappings/provider/radius/")
        return value


class RadiusProviderPropertyMappingSerializer(ModelNamesMixin, serializers.ModelSerializer):
    """authentik's ``RadiusProviderPropertyMappingSerializer``: pk, managed, name, expression (+ component)."""

    pk = serializers.UUIDField(source="pm_uuid", read_only=True)
    component = serializers.SerializerMethodField()
    expression = serializers.CharField(validators=[validate_expression])

    class Meta:
        model = RadiusProviderPropertyMapping
        fields = ["pk", "managed", "name", "expression", "component", "verbose_name", "verbose_name_plural",
                  "meta_model_name"]
        read_only_fields = ["managed"]

    def get_component(self, obj) -> str:
        return "ak-property-mapping-provider-radius-form"

    def validate_expression(self, value: str) -> str:
        """Refused at save time what the evaluator would refuse at every login (import, names with '_')."""
        from core.policies.expression import ExpressionError, compile_expression
        from core.providers.radius.mappings import wrap

        try:
            compile_expression(value)  # first alone: its errors name the line as the administrator wrote it
            compile_expression(wrap(value))
        except ExpressionError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


class RadiusProviderPropertyMappingViewSet(viewsets.ModelViewSet):
    """``/api/v3/propertymappings/provider/radius/`` (authentik's path); superusers only, as every expression."""

    queryset = RadiusProviderPropertyMapping.objects.all()
    serializer_class = RadiusProviderPropertyMappingSerializer
    filterset_fields = {"name": ["exact"], "managed": ["exact", "isnull"]}
    search_fields = ["name"]
    ordering_fields = ["name"]
    ordering = ["name"]

    def perform_destroy(self, instance):
        concrete(instance).delete()


class RadiusProviderViewSet(viewsets.ModelViewSet):
    queryset = RadiusProvider.objects.select_related("application").prefetch_related("outposts")
    serializer_class = RadiusProviderSerializer
    # ours (exact) and authentik's (__iexact) names
    filterset_fields = {"name": IEXACT, "authorization_flow": ["exact"], "authorization_flow__slug": ["iexact"],
                        "client_networks": IEXACT, "bind_mode": ["exact"], "application": ["isnull"]}
    search_fields = ["name", "client_networks"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]


class RadiusOutpostConfigSerializer(serializers.ModelSerializer):
    """Reference §4.1, field names exact; require_message_authenticator (THREATS 16) and bind_mode are Gatehouse's."""

    pk = serializers.IntegerField(read_only=True)
    application_slug = serializers.SerializerMethodField()
    auth_flow_slug = serializers.SerializerMethodField()
    certificate = serializers.SerializerMethodField()

    class Meta:
        model = RadiusProvider
        fields = ["pk", "name", "application_slug", "auth_flow_slug", "client_networks", "shared_secret",
                  "mfa_support", "certificate", "require_message_authenticator", "bind_mode"]

    def get_application_slug(self, obj) -> str:
        app = application_of(obj) or obj.backchannel_application.first()
        return app.slug if app else ""

    def get_auth_flow_slug(self, obj) -> str | None:
        return obj.authorization_flow.slug if obj.authorization_flow_id else None

    def get_certificate(self, obj) -> str | None:
        return str(obj.certificate_id) if obj.certificate_id else None


class RadiusAccountingSerializer(serializers.Serializer):
    """One Accounting-Request (RFC 2866) as the RADIUS outpost reads it; ``nas`` is the address it came from."""

    status = serializers.CharField(max_length=40)
    session_id = serializers.CharField(max_length=253, allow_blank=True, required=False, default="")
    username = serializers.CharField(max_length=253, allow_blank=True, required=False, default="")
    nas = serializers.IPAddressField()
    nas_identifier = serializers.CharField(max_length=253, allow_blank=True, required=False, default="")
    nas_ip_address = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")
    nas_port = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    calling_station_id = serializers.CharField(max_length=253, allow_blank=True, required=False, default="")
    called_station_id = serializers.CharField(max_length=253, allow_blank=True, required=False, default="")
    framed_ip_address = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")
    input_octets = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    output_octets = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    input_packets = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    output_packets = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    session_time = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    terminate_cause = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")
    delay_time = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)


class HexField(serializers.CharField):
    """Octets as hex, ``min_octets``..``max_octets`` long."""

    def __init__(self, min_octets: int, max_octets: int, **kwargs):
        self.min_octets, self.max_octets = min_octets, max_octets
        super().__init__(max_length=2 * max_octets, **kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise serializers.ValidationError("expected hex octets") from None
        if not self.min_octets <= len(value) <= self.max_octets:
            raise serializers.ValidationError(f"expected {self.min_octets} to {self.max_octets} octets, "
                                              f"got {len(value)}")
        return value


class RadiusChallengeSerializer(serializers.Serializer):
    """A CHAP (RFC 1994) or MS-CHAPv2 (RFC 2759) proof from an Access-Request, as the RADIUS outpost reads it."""

    username = serializers.CharField(max_length=253)
    remote_ip = serializers.IPAddressField()
    method = serializers.ChoiceField(choices=["chap", "mschap", "mschapv2"])
    ident = serializers.IntegerField(min_value=0, max_value=255, required=False, default=0)
    challenge = HexField(1, 253)
    response = HexField(16, 24)
    peer_challenge = HexField(16, 16, required=False)

    def validate(self, attrs):
        if attrs["method"] == "mschapv2":
            if len(attrs["challenge"]) != 16 or len(attrs["response"]) != 24 or "peer_challenge" not in attrs:
                raise serializers.ValidationError("mschapv2 needs a 16-octet challenge, a 16-octet peer_challenge "
                                                  "and the 24-octet NT-Response")
        elif attrs["method"] == "mschap":
            if len(attrs["challenge"]) != 8 or len(attrs["response"]) != 24:
                raise serializers.ValidationError("mschap needs an 8-octet challenge and the 24-octet NT-Response")
        elif len(attrs["response"]) != 16:
            raise serializers.ValidationError({"response": ["chap: the response is 16 octets"]})
        return attrs


class RadiusOutpostConfigViewSet(OutpostAuthenticateMixin, OutpostConfigViewSet):
    queryset = (RadiusProvider.objects
                .filter(Q(application__isnull=False) | Q(backchannel_application__isnull=False)).distinct()
                .select_related("application", "authorization_flow"))
    serializer_class = RadiusOutpostConfigSerializer
    outpost_actions = {"list", "retrieve", "authenticate", "accounting", "authenticate_challenge"}
    outpost_kind = "radius"

    def answer_extras(self, provider, user) -> dict:
        """The Access-Accept's reply attributes: the provider's property mappings and the groups'
        radius_reply_attributes (core/providers/radius/mappings.py)."""
        from core.providers.radius.mappings import accept_attributes

        return {"reply_attributes": accept_attributes(provider, user)}

    @extend_schema(request=RadiusChallengeSerializer, responses={200: OpenApiTypes.OBJECT}, filters=False)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def authenticate_challenge(self, request, pk=None):
        """CHAP / MS-CHAPv2 for the provider's outpost: the proof is checked against the user's network
        password (a token of intent radius), then the application's policies (core/providers/radius/challenge.py).
        200 with ``result`` (as ``authenticate``), ``reason``, ``user``, ``reply_attributes`` and, for
        MS-CHAPv2, ``authenticator_response`` and the MPPE keys (hex)."""
        from core.api.permissions import request_outpost
        from core.client_ip import client_ip
        from core.providers.radius.challenge import authenticate_challenge

        outpost = request_outpost(request)
        if outpost is None:
            raise PermissionDenied("authenticate_challenge answers only the outpost that uses the RADIUS provider")
        provider = RadiusProvider.objects.filter(pk=pk, outposts=outpost).first() if str(pk).isdigit() else None
        if provider is None:
            raise NotFound(f"no RADIUS provider with pk {pk!r} on outpost {outpost.name!r}")
        app = application_of(provider) or provider.backchannel_application.first()
        if app is None:
            raise NotFound(f"no application uses provider {provider.name!r}")
        data = RadiusChallengeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = dict(data.validated_data)
        peer = client_ip(request)
        answer = authenticate_challenge(provider, app, body, peer=peer if peer != body["remote_ip"] else "")
        LOGGER.info("outpost authentication", extra={
            "kind": "radius", "provider": provider.name, "outpost": outpost.name, "username": body["username"],
            "client_ip": body["remote_ip"], "method": body["method"], "result": answer["result"],
            "reason": answer["reason"]})
        return Response(answer)

    @extend_schema(request=RadiusAccountingSerializer, responses={201: None}, filters=False)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def accounting(self, request, pk=None):
        """Record one Accounting-Request (start, interim-update, stop, accounting-on/off) as a
        ``custom_radius_accounting`` event: the NAS as client_ip, the user when the name is a user's, the rest
        (session id, bytes, time, cause) in the context. Only the provider's own outpost is answered (Bearer
        outpost token); 201 once stored, so the outpost answers the NAS only then (RFC 2866 §4.1)."""
        from core.accounts.models import User
        from core.api.permissions import request_outpost
        from core.events.record import record
        from protocols.outpost import RADIUS_ACCOUNTING_EVENT

        outpost = request_outpost(request)
        if outpost is None:
            raise PermissionDenied("accounting answers only the outpost that uses the RADIUS provider: send its "
                                   "token as Authorization: Bearer <outpost token>")
        provider = RadiusProvider.objects.filter(pk=pk, outposts=outpost).first() if str(pk).isdigit() else None
        if provider is None:
            raise NotFound(f"no RADIUS provider with pk {pk!r} on outpost {outpost.name!r}")
        data = RadiusAccountingSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        nas = fields.pop("nas")
        user = User.objects.filter(username=fields["username"]).first() if fields["username"] else None
        app = application_of(provider) or provider.backchannel_application.first()
        record(RADIUS_ACCOUNTING_EVENT, user=user, client_ip=nas, app=app.slug if app else "",
               provider=provider.name, outpost=outpost.name,
               **{k: v for k, v in fields.items() if v not in (None, "")})
        return Response(status=201)

    @check_access_schema("RadiusCheckAccess", {"attributes": serializers.CharField(allow_blank=True)}, "outposts_radius_access_check")
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def check_access(self, request, pk=None):
        """May the user whose session the provider's outpost sends use the application behind this provider
        (only that outpost is answered, OutpostConfigViewSet.access_for). ``attributes`` is, as in authentik,
        the base64 of a RADIUS packet carrying the Accept's attributes (property mappings, then the groups'
        radius_reply_attributes), for authentik's own outpost; "" when there are none or access is refused.
        Gatehouse's outpost gets them in the authenticate answer instead."""
        import base64

        from core.providers.radius.mappings import accept_attributes
        from protocols.radius.codec import attribute_items, encode_attributes

        provider, _app, passing, messages = self.access_for(request, pk)
        attributes = ""
        if passing:
            items, problems = attribute_items(accept_attributes(provider, request.user))
            try:
                attributes = base64.b64encode(encode_attributes(provider.shared_secret.encode(), items)).decode() \
                    if items else ""
            except ValueError as exc:
                problems.append(str(exc))
            for problem in problems:
                LOGGER.warning("check_access attributes left out", extra={"provider": provider.name,
                                                                          "problem": problem})
        return Response({"access": {"passing": passing, "messages": messages, "log_messages": []},
                         "attributes": attributes})
