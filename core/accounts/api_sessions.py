"""REST API for login sessions (authentik ``authentik/core/api/authenticated_sessions.py``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, viewsets

from core.accounts.models import AuthenticatedSession
from core.api.permissions import ScopedQuerysetMixin, ViewAccess
from core.events.record import record


class UserAgentSerializer(serializers.Serializer):
    """authentik's parsed User-Agent (ua-parser). Gatehouse does not parse it: families are "Other" (ua-parser's
    answer for an unknown agent), versions empty, and ``string`` is the header as received."""

    device = inline_serializer("UserAgentDevice", {
        "brand": serializers.CharField(allow_null=True), "family": serializers.CharField(),
        "model": serializers.CharField(allow_null=True)})
    os = inline_serializer("UserAgentOS", {
        "family": serializers.CharField(), "major": serializers.CharField(allow_null=True),
        "minor": serializers.CharField(allow_null=True), "patch": serializers.CharField(allow_null=True),
        "patch_minor": serializers.CharField(allow_null=True)})
    user_agent = inline_serializer("UserAgentBrowser", {
        "family": serializers.CharField(), "major": serializers.CharField(), "minor": serializers.CharField(),
        "patch": serializers.CharField()})
    string = serializers.CharField()

    @staticmethod
    def unparsed(header: str) -> dict:
        return {"device": {"brand": None, "family": "Other", "model": None},
                "os": {"family": "Other", "major": None, "minor": None, "patch": None, "patch_minor": None},
                "user_agent": {"family": "Other", "major": "", "minor": "", "patch": ""},
                "string": header}


class AuthenticatedSessionSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()
    user_agent = serializers.SerializerMethodField()
    geo_ip = serializers.SerializerMethodField(help_text="GeoIP is not built: always null")
    asn = serializers.SerializerMethodField(help_text="ASN lookup is not built: always null")
    last_ip = serializers.SerializerMethodField()
    expires = serializers.SerializerMethodField()

    class Meta:
        model = AuthenticatedSession
        fields = ["uuid", "current", "user_agent", "geo_ip", "asn", "last_ip", "last_user_agent", "last_used",
                  "created", "expires", "user"]

    @extend_schema_field(UserAgentSerializer)
    def get_user_agent(self, session) -> dict:
        return UserAgentSerializer.unparsed(session.last_user_agent)

    @extend_schema_field(inline_serializer("SessionGeoIp", {
        "continent": serializers.CharField(allow_null=True), "country": serializers.CharField(allow_null=True),
        "lat": serializers.FloatField(allow_null=True), "long": serializers.FloatField(allow_null=True),
        "city": serializers.CharField()}, allow_null=True))
    def get_geo_ip(self, session) -> dict | None:
        return None

    @extend_schema_field(inline_serializer("SessionAsn", {
        "asn": serializers.IntegerField(allow_null=True), "as_org": serializers.CharField(allow_null=True),
        "network": serializers.CharField(allow_null=True)}, allow_null=True))
    def get_asn(self, session) -> dict | None:
        return None

    def get_last_ip(self, session) -> str:
        return session.last_ip or ""

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_expires(self, session) -> str:
        """A row without its own expiry ends with its Django session: SESSION_COOKIE_AGE after last use."""
        expires = session.expires or session.last_used + timedelta(seconds=settings.SESSION_COOKIE_AGE)
        return serializers.DateTimeField().to_representation(expires)

    def get_current(self, session) -> bool:
        request = self.context.get("request")
        django_session = getattr(getattr(request, "_request", request), "session", None)
        return bool(django_session is not None and django_session.session_key == session.session_key)


class AuthenticatedSessionFilter(filters.FilterSet):
    session__last_ip = filters.CharFilter(field_name="last_ip", help_text="authentik's name for last_ip")
    session__last_user_agent = filters.CharFilter(field_name="last_user_agent",
                                                  help_text="authentik's name for last_user_agent")

    class Meta:
        model = AuthenticatedSession
        fields = ["user__username", "last_ip", "last_user_agent"]


class AuthenticatedSessionViewSet(ScopedQuerysetMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                                  mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = AuthenticatedSession.objects.select_related("user")
    serializer_class = AuthenticatedSessionSerializer
    permission_classes = [ViewAccess]
    lookup_field = "uuid"
    filterset_class = AuthenticatedSessionFilter
    search_fields = ["user__username", "last_ip", "last_user_agent"]
    ordering_fields = ["last_used", "created", "expires"]
    ordering = ["-last_used"]
    user_actions = {"list", "retrieve", "destroy"}
    people_only_actions = user_actions

    def scope_user(self, qs, user):
        return qs.filter(user=user)

    def perform_destroy(self, instance):
        # The Django session and every outpost's copy end with the row (core/accounts/sessions.py).
        instance.delete()
        django_session = getattr(self.request._request, "session", None)
        if django_session is not None and django_session.session_key == instance.session_key:
            django_session.flush()  # this very browser: a new, empty session instead of the deleted one
        record("logout", user=self.request.user, message="session revoked through the API",
               session_user=instance.user.username)
