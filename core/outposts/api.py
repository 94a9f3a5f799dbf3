"""REST API for outposts (authentik ``authentik/outposts/api/outposts.py``; reference §1.1, §1.4, §1.6).

An outpost's token may list and read only its own outpost: the outpost takes ``results[0]``.
"""

from __future__ import annotations

from django.db import transaction
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core import durations
from core.accounts.api import ProviderSerializer
from core.accounts.models import Provider
from core.api.fields import JSONObjectField
from core.api.permissions import ScopedQuerysetMixin, ViewAccess
from core.inheritance import concrete
from core.outposts.config import clean_config
from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost, OutpostType
from core.outposts.state import list_states

DEFAULT_REFRESH_S = 300
MIN_REFRESH_S = 30

# Which provider model each outpost type serves (authentik OutpostSerializer.validate_providers).
PROVIDER_MODELS = {OutpostType.PROXY: "proxyprovider", OutpostType.LDAP: "ldapprovider",
                   OutpostType.RADIUS: "radiusprovider"}


def refresh_interval_s(config: dict) -> int:
    """``config.refresh_interval`` in seconds: unparsable or <= 0 -> 5 min, below 30 s -> 30 s (§1.4)."""
    try:
        value = durations.seconds(str((config or {}).get("refresh_interval", "minutes=5")))
    except ValueError:
        return DEFAULT_REFRESH_S
    if value <= 0:
        return DEFAULT_REFRESH_S
    return max(MIN_REFRESH_S, int(value))


class OutpostHealthSerializer(serializers.Serializer):
    """authentik ``OutpostHealthSerializer``: what an instance said in its last hello; what it did not say is
    answered empty (false, null for FIPS). Gatehouse does not pin outpost versions: the expected version and
    build are the instance's own and it is never outdated."""

    uid = serializers.CharField()
    last_seen = serializers.DateTimeField()
    version = serializers.CharField(default="")
    golang_version = serializers.CharField(default="")
    openssl_enabled = serializers.BooleanField(default=False)
    openssl_version = serializers.CharField(default="")
    fips_enabled = serializers.BooleanField(default=None, allow_null=True)
    version_should = serializers.CharField(source="version", default="")
    version_outdated = serializers.SerializerMethodField()
    build_hash = serializers.CharField(default="")
    build_hash_should = serializers.CharField(source="build_hash", default="")
    hostname = serializers.CharField(default="")
    args = serializers.DictField(required=False)

    def get_version_outdated(self, state) -> bool:
        return False


class OutpostSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    providers = serializers.PrimaryKeyRelatedField(queryset=Provider.objects.all(), many=True, required=False)
    providers_obj = serializers.SerializerMethodField()
    token_identifier = serializers.CharField(read_only=True)
    refresh_interval_s = serializers.SerializerMethodField()
    service_connection = serializers.SerializerMethodField()
    service_connection_obj = serializers.SerializerMethodField()
    config = JSONObjectField(required=False)

    class Meta:
        model = Outpost
        fields = ["pk", "name", "type", "providers", "providers_obj", "service_connection",
                  "service_connection_obj", "token_identifier", "config", "managed", "refresh_interval_s"]
        read_only_fields = ["managed"]

    @extend_schema_field(ProviderSerializer(many=True))
    def get_providers_obj(self, outpost) -> list[dict]:
        return [ProviderSerializer(concrete(p), context=self.context).data for p in outpost.providers.all()]

    def get_refresh_interval_s(self, outpost) -> int:
        return refresh_interval_s(outpost.config)

    @extend_schema_field(OpenApiTypes.UUID)
    def get_service_connection(self, outpost) -> str | None:
        return None  # Gatehouse does not deploy outposts into Docker/Kubernetes

    @extend_schema_field(inline_serializer("ServiceConnection", {
        "pk": serializers.UUIDField(), "name": serializers.CharField(), "local": serializers.BooleanField(),
        "component": serializers.CharField(), "verbose_name": serializers.CharField(),
        "verbose_name_plural": serializers.CharField(), "meta_model_name": serializers.CharField()},
        allow_null=True))
    def get_service_connection_obj(self, outpost) -> dict | None:
        return None

    def validate_config(self, value):
        merged, problems = clean_config(value)  # the admin's YAML form checks with the same function
        if problems:
            raise serializers.ValidationError([f"{key}: {problem}" for key, problem in problems.items()])
        return merged

    def validate(self, attrs):
        kind = attrs.get("type", getattr(self.instance, "type", OutpostType.PROXY))
        providers = attrs.get("providers")
        if providers is None and self.instance is not None and "type" in attrs:
            providers = list(self.instance.providers.all())
        problem = providers_problem(kind, attrs.get("managed", getattr(self.instance, "managed", None)), providers)
        if problem:
            raise serializers.ValidationError({"providers": [problem]})
        return attrs


def providers_problem(kind: str, managed: str | None, providers) -> str | None:
    """Why an outpost of ``kind`` cannot serve one of ``providers`` (the API and the admin's form), or None."""
    wanted = {PROVIDER_MODELS.get(kind)}
    if kind == OutpostType.PROXY and managed == EMBEDDED_OUTPOST_MANAGED:
        wanted.update((PROVIDER_MODELS[OutpostType.RADIUS],  # ak server runs the RADIUS and LDAP outposts too
                       PROVIDER_MODELS[OutpostType.LDAP]))
    for provider in providers or []:
        got = type(concrete(provider))._meta.model_name
        if got not in wanted:
            return (f"provider {provider.name!r} is a {got}; a {kind} outpost serves only "
                    f"{' and '.join(sorted(wanted))} providers")
    return None


class OutpostFilter(filters.FilterSet):
    """Ours and authentik's filter names. Gatehouse has no service connections (it deploys no outposts): a
    filter on one's name matches no outpost."""

    providers_by_pk = filters.ModelMultipleChoiceFilter(field_name="providers", queryset=Provider.objects.all())
    service_connection__name__icontains = filters.CharFilter(method="no_service_connection")
    service_connection__name__iexact = filters.CharFilter(method="no_service_connection")

    class Meta:
        model = Outpost
        fields = {"name": ["exact", "icontains", "iexact"], "type": ["exact"],
                  "managed": ["exact", "icontains", "iexact"], "providers": ["isnull", "exact"]}

    def no_service_connection(self, qs, name, value):
        return qs.none()


class OutpostViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    queryset = Outpost.objects.prefetch_related("providers")
    serializer_class = OutpostSerializer
    permission_classes = [ViewAccess]
    filterset_class = OutpostFilter
    search_fields = ["name", "providers__name"]
    ordering_fields = ["name", "type"]
    ordering = ["name"]
    outpost_actions = {"list", "retrieve", "health"}

    def scope_outpost(self, qs, outpost):
        return qs.filter(pk=outpost.pk)

    def get_queryset(self):
        return super().get_queryset().distinct()

    def perform_create(self, serializer):
        from core.outposts.service import ensure_identity

        with transaction.atomic():
            outpost = serializer.save()
            ensure_identity(outpost)

    def perform_destroy(self, instance):
        if instance.managed:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"managed": [f"outpost {instance.name!r} is managed ({instance.managed}) and "
                                               "cannot be deleted; remove its providers instead"]})
        instance.delete()

    @extend_schema(responses=OutpostHealthSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def health(self, request, pk=None):
        """The live instances of this outpost, from their websocket hellos (kept 15 s)."""
        outpost = self.get_object()
        return Response(OutpostHealthSerializer(list_states(outpost), many=True).data)
