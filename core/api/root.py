"""``/root/config/``: the global settings an outpost reads once at start (reference §1.1).

Public, as authentik's: it holds no secret and the login page reads it before anyone signs in.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

CACHE_TIMEOUT = 300  # seconds; the LDAP outpost warms its bind flow this often (§1.4)

ConfigSerializer = inline_serializer("Config", {
    "error_reporting": inline_serializer("ErrorReportingConfig", {
        "enabled": serializers.BooleanField(), "sentry_dsn": serializers.CharField(),
        "environment": serializers.CharField(), "send_pii": serializers.BooleanField(),
        "traces_sample_rate": serializers.FloatField()}),
    "capabilities": serializers.ListField(child=serializers.CharField()),
    "cache_timeout": serializers.IntegerField(),
    "cache_timeout_flows": serializers.IntegerField(),
    "cache_timeout_policies": serializers.IntegerField(),
    "cache_timeout_reputation": serializers.IntegerField(),
})


class ConfigView(APIView):
    permission_classes = [AllowAny]
    pagination_class = None

    @extend_schema(responses=ConfigSerializer)
    def get(self, request):
        return Response({
            "error_reporting": {"enabled": False, "sentry_dsn": "", "environment": "", "send_pii": False,
                                "traces_sample_rate": 0.0},
            "capabilities": [],
            "cache_timeout": CACHE_TIMEOUT,
            "cache_timeout_flows": CACHE_TIMEOUT,
            "cache_timeout_policies": CACHE_TIMEOUT,
            "cache_timeout_reputation": CACHE_TIMEOUT,
        })
