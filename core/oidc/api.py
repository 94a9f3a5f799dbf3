"""REST API for OAuth2/OpenID providers and scope mappings (authentik
``authentik/providers/oauth2/api/*``). The protocol endpoints live in core/oidc/views."""

from __future__ import annotations

import re

from rest_framework import serializers, viewsets

from core.accounts.api import ProviderSerializer
from core.api.fields import ModelNamesMixin, RedirectURIsField, validate_duration, validate_expression
from core.inheritance import concrete
from core.oidc.models import OAuth2Provider, ScopeMapping

DURATION_FIELDS = ("access_code_validity", "access_token_validity", "refresh_token_validity")


def validate_redirect_uris(value):
    """``[{"matching_mode": "strict"|"regex", "url": "..."}]``; a regex must compile."""
    if not isinstance(value, list):
        raise serializers.ValidationError('expected a list like [{"matching_mode": "strict", "url": "https://..."}]')
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not entry.get("url"):
            raise serializers.ValidationError(f"entry {index}: expected an object with a non-empty 'url'")
        mode = entry.get("matching_mode", "strict")
        if mode not in ("strict", "regex"):
            raise serializers.ValidationError(f"entry {index}: matching_mode {mode!r} must be strict or regex")
        if mode == "regex":
            try:
                re.compile(entry["url"])
            except re.error as exc:
                raise serializers.ValidationError(f"entry {index}: regex {entry['url']!r} does not compile: "
                                                  f"{exc}") from None
        entry.setdefault("matching_mode", mode)
    return value


class OAuth2ProviderSerializer(ProviderSerializer):
    redirect_uris = RedirectURIsField(required=False, validators=[validate_redirect_uris])

    class Meta:
        model = OAuth2Provider
        fields = [*ProviderSerializer.Meta.fields, "client_type", "client_id", "client_secret",
                  "access_code_validity", "access_token_validity", "refresh_token_validity",
                  "include_claims_in_id_token", "signing_key", "redirect_uris", "sub_mode", "issuer_mode"]
        extra_kwargs = {name: {"validators": [validate_duration]} for name in DURATION_FIELDS}


class OAuth2ProviderViewSet(viewsets.ModelViewSet):
    queryset = OAuth2Provider.objects.filter(proxyprovider__isnull=True).select_related("application")
    serializer_class = OAuth2ProviderSerializer
    filterset_fields = ["name", "client_type", "client_id", "issuer_mode", "sub_mode", "authorization_flow",
                        "access_code_validity", "access_token_validity", "refresh_token_validity",
                        "include_claims_in_id_token", "signing_key", "property_mappings", "application"]
    search_fields = ["name", "client_id"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]


class ScopeMappingSerializer(ModelNamesMixin, serializers.ModelSerializer):
    pk = serializers.UUIDField(source="pm_uuid", read_only=True)
    component = serializers.SerializerMethodField()
    expression = serializers.CharField(validators=[validate_expression])

    class Meta:
        model = ScopeMapping
        fields = ["pk", "managed", "name", "expression", "component", "verbose_name", "verbose_name_plural",
                  "meta_model_name", "scope_name", "description"]
        read_only_fields = ["managed"]

    def get_component(self, obj) -> str:
        return "ak-property-mapping-provider-scope-form"


class ScopeMappingViewSet(viewsets.ModelViewSet):
    queryset = ScopeMapping.objects.all()
    serializer_class = ScopeMappingSerializer
    filterset_fields = {"name": ["exact"], "scope_name": ["exact"], "managed": ["exact", "isnull"]}
    search_fields = ["name", "scope_name", "description"]
    ordering_fields = ["name", "scope_name"]
    ordering = ["scope_name", "name"]

    def perform_destroy(self, instance):
        concrete(instance).delete()
