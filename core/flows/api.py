"""Admin REST API for flows, stages and their bindings (authentik ``authentik/flows/api/*``).
The flow executor (``/api/v3/flows/executor/``) is a different module (core/flows/urls.py)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, viewsets

from core.api.fields import ThemedUrlsSerializer
from core.flows.models import Flow, FlowStageBinding, Stage
from core.inheritance import concrete, subclass_lookups
from core.policies.models import Policy


class FlowURLsMixin(serializers.Serializer):
    """authentik's URL fields of a flow. Gatehouse has no background images and no flow export (blueprints
    are the way to copy flows, README "Managing Gatehouse as code"): the background URL is the flow's
    ``background`` as stored, the export URL empty."""

    background_url = serializers.SerializerMethodField()
    export_url = serializers.SerializerMethodField(help_text="flow export is not built: always empty")

    def get_background_url(self, flow) -> str:
        return flow.background or ""

    def get_export_url(self, flow) -> str:
        return ""


class FlowSetSerializer(FlowURLsMixin, serializers.ModelSerializer):
    """A flow as listed inside a stage (authentik ``FlowSetSerializer``)."""

    pk = serializers.UUIDField(source="pbm_uuid", read_only=True)
    policybindingmodel_ptr_id = serializers.UUIDField(source="pbm_uuid", read_only=True)

    class Meta:
        model = Flow
        fields = ["pk", "policybindingmodel_ptr_id", "name", "slug", "title", "designation", "background_url",
                  "policy_engine_mode", "compatibility_mode", "export_url", "layout", "denied_action"]


class StageSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="stage_uuid", read_only=True)
    component = serializers.SerializerMethodField()
    verbose_name = serializers.SerializerMethodField()
    verbose_name_plural = serializers.SerializerMethodField()
    meta_model_name = serializers.SerializerMethodField()
    flow_set = serializers.SerializerMethodField()

    class Meta:
        model = Stage
        fields = ["pk", "name", "component", "verbose_name", "verbose_name_plural", "meta_model_name", "flow_set"]

    def _model(self, obj):
        return type(concrete(obj) if type(obj) is Stage else obj)

    def get_component(self, obj) -> str:
        return f"ak-stage-{self._model(obj)._meta.model_name.removesuffix('stage')}-form"

    def get_verbose_name(self, obj) -> str:
        return str(self._model(obj)._meta.verbose_name)

    def get_verbose_name_plural(self, obj) -> str:
        return str(self._model(obj)._meta.verbose_name_plural)

    def get_meta_model_name(self, obj) -> str:
        meta = self._model(obj)._meta
        return f"authentik_flows.{meta.model_name}"

    @extend_schema_field(FlowSetSerializer(many=True))
    def get_flow_set(self, obj) -> list[dict]:
        return FlowSetSerializer([b.target for b in obj.flow_bindings.select_related("target")], many=True).data


class StageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                   viewsets.GenericViewSet):
    """``/stages/all/``: every stage kind (create and edit through blueprints or the admin)."""

    queryset = Stage.objects.select_related(*subclass_lookups(Stage)).order_by("name")
    serializer_class = StageSerializer
    filterset_fields = ["name"]
    search_fields = ["name"]
    ordering_fields = ["name"]
    ordering = ["name"]

    def perform_destroy(self, instance):
        concrete(instance).delete()


class FlowSerializer(FlowURLsMixin, serializers.ModelSerializer):
    pk = serializers.UUIDField(source="pbm_uuid", read_only=True)
    policybindingmodel_ptr_id = serializers.UUIDField(source="pbm_uuid", read_only=True)
    stages = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    policies = serializers.SerializerMethodField()
    background_themed_urls = serializers.SerializerMethodField()
    cache_count = serializers.SerializerMethodField(help_text="Gatehouse caches no flow plans: always 0")

    class Meta:
        model = Flow
        fields = ["pk", "policybindingmodel_ptr_id", "name", "slug", "title", "designation", "background",
                  "background_url", "background_themed_urls", "stages", "policies", "cache_count",
                  "policy_engine_mode", "compatibility_mode", "export_url", "layout", "denied_action",
                  "authentication"]

    @extend_schema_field(ThemedUrlsSerializer(allow_null=True))
    def get_background_themed_urls(self, flow) -> dict | None:
        return None

    def get_cache_count(self, flow) -> int:
        return 0

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_policies(self, flow) -> list[str]:
        return [str(b.pk) for b in flow.bindings.all()]


class FlowFilter(filters.FilterSet):
    flow_uuid = filters.UUIDFilter(field_name="pbm_uuid", help_text="the flow (authentik's name)")

    class Meta:
        model = Flow
        fields = ["name", "slug", "designation", "authentication", "denied_action"]


class FlowViewSet(viewsets.ModelViewSet):
    queryset = Flow.objects.all()
    serializer_class = FlowSerializer
    lookup_field = "slug"
    filterset_class = FlowFilter
    search_fields = ["name", "slug", "title", "designation"]
    ordering_fields = ["slug", "name", "designation"]
    ordering = ["slug"]


class FlowStageBindingSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="pbm_uuid", read_only=True)
    policybindingmodel_ptr_id = serializers.UUIDField(source="pbm_uuid", read_only=True)
    stage_obj = StageSerializer(source="stage", read_only=True)

    class Meta:
        model = FlowStageBinding
        fields = ["pk", "policybindingmodel_ptr_id", "target", "stage", "stage_obj", "evaluate_on_plan",
                  "re_evaluate_policies", "order", "policy_engine_mode", "invalid_response_action"]


class FlowStageBindingFilter(filters.FilterSet):
    fsb_uuid = filters.UUIDFilter(field_name="pbm_uuid", help_text="the binding (authentik's name)")
    policies = filters.ModelMultipleChoiceFilter(field_name="bindings__policy", queryset=Policy.objects.all(),
                                                 help_text="bindings with any of these policies bound to them")

    class Meta:
        model = FlowStageBinding
        fields = ["pbm_uuid", "target", "stage", "order", "evaluate_on_plan", "re_evaluate_policies",
                  "policy_engine_mode", "invalid_response_action"]


class FlowStageBindingViewSet(viewsets.ModelViewSet):
    lookup_url_kwarg = "fsb_uuid"  # authentik's path parameter (the row's key is our pbm_uuid)
    queryset = FlowStageBinding.objects.select_related("target", "stage")
    serializer_class = FlowStageBindingSerializer
    filterset_class = FlowStageBindingFilter
    search_fields = ["stage__name", "target__slug"]
    ordering_fields = ["order", "target__slug"]
    ordering = ["order"]
