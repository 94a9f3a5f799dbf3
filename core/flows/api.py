"""Admin REST API for flows, stages and their bindings (authentik ``authentik/flows/api/*``).
The flow executor (``/api/v3/flows/executor/``) is a different module (core/flows/urls.py)."""

from __future__ import annotations

from rest_framework import mixins, serializers, viewsets

from core.flows.models import Flow, FlowStageBinding, Stage
from core.inheritance import concrete, subclass_lookups


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

    def get_flow_set(self, obj) -> list[dict]:
        return [{"pk": str(b.target.pk), "slug": b.target.slug, "name": b.target.name}
                for b in obj.flow_bindings.select_related("target")]


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


class FlowSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="pbm_uuid", read_only=True)
    policybindingmodel_ptr_id = serializers.UUIDField(source="pbm_uuid", read_only=True)
    stages = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    policies = serializers.SerializerMethodField()

    class Meta:
        model = Flow
        fields = ["pk", "policybindingmodel_ptr_id", "name", "slug", "title", "designation", "background", "stages",
                  "policies", "policy_engine_mode", "compatibility_mode", "layout", "denied_action",
                  "authentication"]

    def get_policies(self, flow) -> list[str]:
        return [str(b.pk) for b in flow.bindings.all()]


class FlowViewSet(viewsets.ModelViewSet):
    queryset = Flow.objects.all()
    serializer_class = FlowSerializer
    lookup_field = "slug"
    filterset_fields = ["name", "slug", "designation", "authentication"]
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


class FlowStageBindingViewSet(viewsets.ModelViewSet):
    queryset = FlowStageBinding.objects.select_related("target", "stage")
    serializer_class = FlowStageBindingSerializer
    filterset_fields = ["target", "stage", "order", "evaluate_on_plan", "re_evaluate_policies", "policy_engine_mode",
                        "invalid_response_action"]
    search_fields = ["stage__name", "target__slug"]
    ordering_fields = ["order", "target__slug"]
    ordering = ["order"]
