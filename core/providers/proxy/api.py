"""REST API for proxy providers and the proxy outpost's configuration
(authentik ``authentik/providers/proxy/api.py``; reference §2.2)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers, viewsets

from core.accounts.api import ProviderSerializer
from core.api.fields import IEXACT, RedirectURIsField, application_of, seconds_or_none, validate_duration
from core.api.outpost_config import OutpostConfigViewSet, application_access, load_access_users
from core.oidc.discovery import build_discovery
from core.oidc.models import ScopeMapping
from core.providers.proxy.models import ProxyMode, ProxyProvider
from core.system.base_url import request_base
from protocols import proxy_provider


def _validate_http_url(value: str, field: str) -> str:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError(f"{field} {value!r} must be an absolute http(s) URL, "
                                          "e.g. https://app.example.com")
    return value


class ProxyProviderSerializer(ProviderSerializer):
    redirect_uris = RedirectURIsField(read_only=True)
    client_id = serializers.CharField(read_only=True)
    outpost_set = serializers.SerializerMethodField()

    class Meta:
        model = ProxyProvider
        fields = [*ProviderSerializer.Meta.fields, "client_id", "internal_host", "external_host",
                  "internal_host_ssl_validation", "certificate", "skip_path_regex", "basic_auth_enabled",
                  "basic_auth_password_attribute", "basic_auth_user_attribute", "mode", "intercept_header_auth",
                  "redirect_uris", "cookie_domain", "access_token_validity", "refresh_token_validity",
                  "outpost_set"]
        extra_kwargs = {"access_token_validity": {"validators": [validate_duration]},
                        "refresh_token_validity": {"validators": [validate_duration]}}

    def get_outpost_set(self, obj) -> list[str]:
        return [f"{o.pk}" for o in obj.outposts.all()]

    def validate_external_host(self, value):
        return _validate_http_url(value, "external_host")

    def validate_skip_path_regex(self, value):
        for number, line in enumerate((value or "").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                re.compile(line)
            except re.error as exc:
                raise serializers.ValidationError(f"line {number} {line!r} is not a valid regex: {exc}") from None
        return value

    def validate(self, attrs):
        def get(name):
            return attrs.get(name, getattr(self.instance, name, None) if self.instance else None)

        mode = get("mode") or ProxyMode.PROXY
        if mode == ProxyMode.PROXY:
            internal = get("internal_host")
            if not internal:
                raise serializers.ValidationError({"internal_host": [
                    "internal_host is required in proxy mode (the upstream URL, e.g. http://app:8080); "
                    "use mode forward_single or forward_domain for forward auth"]})
            try:
                _validate_http_url(internal, "internal_host")
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"internal_host": exc.detail}) from None
        if mode == ProxyMode.FORWARD_DOMAIN and not get("cookie_domain"):
            raise serializers.ValidationError({"cookie_domain": [
                "cookie_domain is required in forward_domain mode, e.g. example.com"]})
        return attrs


class ProxyProviderViewSet(viewsets.ModelViewSet):
    queryset = ProxyProvider.objects.select_related("application").prefetch_related("outposts")
    serializer_class = ProxyProviderSerializer
    # ours (exact) and authentik's (__iexact) names; application__isnull as authentik's
    filterset_fields = {"name": IEXACT, "mode": IEXACT, "external_host": IEXACT, "internal_host": IEXACT,
                        "authorization_flow": ["exact"], "authorization_flow__slug": ["iexact"],
                        "basic_auth_enabled": IEXACT, "cookie_domain": IEXACT, "internal_host_ssl_validation": IEXACT,
                        "skip_path_regex": ["iexact"], "basic_auth_user_attribute": ["iexact"],
                        "basic_auth_password_attribute": ["iexact"], "certificate__kp_uuid": ["iexact"],
                        "certificate__name": ["iexact"], "property_mappings": ["iexact"], "application": ["isnull"]}
    search_fields = ["name", "external_host", "internal_host"]
    ordering_fields = ["name", "id", "external_host"]
    ordering = ["name"]


class ProxyOutpostConfigSerializer(serializers.ModelSerializer):
    """What a proxy outpost reads for each of its providers (reference §2.2, field names exact)."""

    pk = serializers.IntegerField(read_only=True)
    oidc_configuration = serializers.SerializerMethodField()
    certificate = serializers.SerializerMethodField()
    access_token_validity = serializers.SerializerMethodField()
    scopes_to_request = serializers.SerializerMethodField()
    assigned_application_slug = serializers.SerializerMethodField()
    assigned_application_name = serializers.SerializerMethodField()
    access = serializers.SerializerMethodField()

    class Meta:
        model = ProxyProvider
        fields = list(proxy_provider.OUTPOST_CONFIG_FIELDS)  # the contract (protocols/proxy_provider.py)

    def get_oidc_configuration(self, obj) -> dict:
        return build_discovery(obj, request_base(self.context["request"]))

    def get_certificate(self, obj) -> str | None:
        return str(obj.certificate_id) if obj.certificate_id else None

    def get_access_token_validity(self, obj) -> float | None:
        return seconds_or_none(obj.access_token_validity)

    def get_scopes_to_request(self, obj) -> list[str]:
        names = ScopeMapping.objects.filter(provider=obj).values_list("scope_name", flat=True)
        return sorted(set(names))

    def get_assigned_application_slug(self, obj) -> str:
        return application_of(obj).slug

    def get_assigned_application_name(self, obj) -> str:
        return application_of(obj).name

    @extend_schema_field(inline_serializer("ProxyOutpostAccess", {
        "default": serializers.ChoiceField(choices=list(proxy_provider.ACCESS_DEFAULTS)),
        "allow_subjects": serializers.ListField(child=serializers.CharField()),
        "deny_subjects": serializers.ListField(child=serializers.CharField())}))
    def get_access(self, obj) -> dict:
        """Gatehouse addition (protocols/proxy_provider.py): who may use the application now, by OIDC ``sub``.
        The user list is loaded once per API response and shared by every provider in it."""
        users = self.context.get("_access_users")
        if users is None:
            users = self.context["_access_users"] = load_access_users()
        return application_access(obj, application_of(obj), users)


class ProxyOutpostConfigViewSet(OutpostConfigViewSet):
    queryset = ProxyProvider.objects.filter(application__isnull=False).select_related("application")
    serializer_class = ProxyOutpostConfigSerializer

