"""REST API for policy bindings and policies (authentik ``authentik/policies/api/*`` and the
expression, password and reputation policy apps)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, viewsets

from core.accounts.api import GroupMemberSerializer, UserGroupSerializer
from core.accounts.models import Group, User
from core.api.fields import validate_expression
from core.inheritance import concrete, subclass_lookups
from core.policies.models import (
    ExpressionPolicy,
    PasswordPolicy,
    Policy,
    PolicyBinding,
    PolicyBindingModel,
    ReputationPolicy,
)


class PolicySerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="policy_uuid", read_only=True)
    component = serializers.SerializerMethodField()
    verbose_name = serializers.SerializerMethodField()
    verbose_name_plural = serializers.SerializerMethodField()
    meta_model_name = serializers.SerializerMethodField()
    bound_to = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = ["pk", "name", "execution_logging", "component", "verbose_name", "verbose_name_plural",
                  "meta_model_name", "bound_to",
                  "created", "last_updated"]

    def _model(self, obj):
        return type(concrete(obj) if type(obj) is Policy else obj)

    def get_component(self, obj) -> str:
        return f"ak-policy-{self._model(obj)._meta.model_name.removesuffix('policy')}-form"

    def get_verbose_name(self, obj) -> str:
        return str(self._model(obj)._meta.verbose_name)

    def get_verbose_name_plural(self, obj) -> str:
        return str(self._model(obj)._meta.verbose_name_plural)

    def get_meta_model_name(self, obj) -> str:
        meta = self._model(obj)._meta
        return f"{meta.app_label}.{meta.model_name}"

    def get_bound_to(self, obj) -> int:
        return obj.bindings.count()


class PolicyFilter(filters.FilterSet):
    promptstage__isnull = filters.BooleanFilter(method="filter_promptstage", help_text=(
        "policies not used by a prompt stage (true) or used by one (false); Gatehouse has no prompt stages"))

    class Meta:
        model = Policy
        fields = {"name": ["exact"], "bindings": ["isnull"]}

    def filter_promptstage(self, qs, name, value):
        return qs if value else qs.none()


class PolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                    viewsets.GenericViewSet):
    """``/policies/all/``: every policy kind."""

    queryset = Policy.objects.select_related(*subclass_lookups(Policy)).order_by("name")
    serializer_class = PolicySerializer
    filterset_class = PolicyFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created"]
    ordering = ["name"]

    def perform_destroy(self, instance):
        concrete(instance).delete()


class ExpressionPolicySerializer(PolicySerializer):
    expression = serializers.CharField(validators=[validate_expression])

    class Meta:
        model = ExpressionPolicy
        fields = [*PolicySerializer.Meta.fields, "expression"]


class PasswordPolicySerializer(PolicySerializer):
    class Meta:
        model = PasswordPolicy
        fields = [*PolicySerializer.Meta.fields, "password_field", "amount_digits", "amount_uppercase",
                  "amount_lowercase", "amount_symbols", "length_min", "symbol_charset", "error_message",
                  "check_static_rules"]


class ReputationPolicySerializer(PolicySerializer):
    class Meta:
        model = ReputationPolicy
        fields = [*PolicySerializer.Meta.fields, "check_ip", "check_username", "threshold"]


def _policy_viewset(model, serializer, fields: tuple[str, ...]):
    class _ViewSet(viewsets.ModelViewSet):
        queryset = model.objects.order_by("name")
        serializer_class = serializer
        # authentik's filters: every field of the kind
        filterset_fields = ["policy_uuid", "name", "execution_logging", "created", "last_updated", *fields]
        search_fields = ["name"]
        ordering_fields = ["name", "created"]
        ordering = ["name"]

    _ViewSet.__name__ = _ViewSet.__qualname__ = f"{model.__name__}ViewSet"
    return _ViewSet


ExpressionPolicyViewSet = _policy_viewset(ExpressionPolicy, ExpressionPolicySerializer, ("expression",))
PasswordPolicyViewSet = _policy_viewset(PasswordPolicy, PasswordPolicySerializer, (
    "password_field", "amount_digits", "amount_uppercase", "amount_lowercase", "amount_symbols", "length_min",
    "symbol_charset", "error_message", "check_static_rules"))
ReputationPolicyViewSet = _policy_viewset(ReputationPolicy, ReputationPolicySerializer,
                                          ("check_ip", "check_username", "threshold"))


class PolicyBindingSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="policy_binding_uuid", read_only=True)
    target = serializers.PrimaryKeyRelatedField(queryset=PolicyBindingModel.objects.all())
    policy = serializers.PrimaryKeyRelatedField(queryset=Policy.objects.all(), required=False, allow_null=True)
    group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all(), required=False, allow_null=True)
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True)
    policy_obj = PolicySerializer(source="policy", read_only=True, allow_null=True)
    group_obj = UserGroupSerializer(source="group", read_only=True, allow_null=True)
    user_obj = GroupMemberSerializer(source="user", read_only=True, allow_null=True)
    expires = serializers.SerializerMethodField(help_text="bindings do not expire in Gatehouse: always null")
    expiring = serializers.SerializerMethodField(help_text="bindings do not expire in Gatehouse: always false")

    class Meta:
        model = PolicyBinding
        fields = ["pk", "policy", "group", "user", "policy_obj", "group_obj", "user_obj", "target", "negate",
                  "enabled", "order", "timeout", "failure_result", "expires", "expiring"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expires(self, binding) -> str | None:
        return None

    def get_expiring(self, binding) -> bool:
        return False

    def validate(self, attrs):
        def get(name):
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name, None) if self.instance is not None else None

        subjects = [name for name in ("policy", "group", "user") if get(name) is not None]
        if len(subjects) != 1:
            field = subjects[1] if len(subjects) > 1 else "policy"
            raise serializers.ValidationError({field: [
                "a binding names exactly one of policy, group or user "
                f"(got {', '.join(subjects) or 'none'})"]})
        return attrs


class PolicyBindingFilter(filters.FilterSet):
    target_in = filters.ModelMultipleChoiceFilter(field_name="target", queryset=PolicyBindingModel.objects.all(),
                                                  help_text="bindings of any of these targets (authentik's name)")

    class Meta:
        model = PolicyBinding
        fields = {"target": ["exact"], "policy": ["exact", "isnull"], "group": ["exact"], "user": ["exact"],
                  "enabled": ["exact"], "order": ["exact"], "timeout": ["exact"]}


class PolicyBindingViewSet(viewsets.ModelViewSet):
    queryset = PolicyBinding.objects.select_related("policy", "group", "user", "target")
    serializer_class = PolicyBindingSerializer
    filterset_class = PolicyBindingFilter
    search_fields = ["policy__name", "group__name", "user__username"]
    ordering_fields = ["order", "target", "pk"]
    ordering = ["order", "pk"]
