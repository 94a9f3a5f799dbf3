"""REST API for the audit log (authentik ``authentik/events/api/events.py``).

Outposts POST ``configuration_error`` events here (reference §1.8); they, and anyone but a superuser,
cannot choose the event's user or write login/logout-style events, so the log cannot be forged.
"""

from __future__ import annotations

from django.db.models import Q
from django_filters import rest_framework as filters
from rest_framework import mixins, serializers, viewsets

from core.api.permissions import ScopedQuerysetMixin, ViewAccess, is_superuser
from core.events.models import Event, EventAction
from core.events.record import user_summary

# What a non-superuser (an outpost) may report.
REPORTABLE_ACTIONS = {EventAction.CONFIGURATION_ERROR, EventAction.SYSTEM_EXCEPTION, EventAction.SUSPICIOUS_REQUEST}


class EventSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="event_uuid", read_only=True)

    class Meta:
        model = Event
        fields = ["pk", "user", "action", "app", "context", "client_ip", "created", "expires"]
        read_only_fields = ["created"]
        extra_kwargs = {"expires": {"required": False}}

    def validate_context(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("context must be a JSON object")
        return value

    def validate_user(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("user must be a JSON object like {\"pk\": 1, \"username\": \"...\"}")
        return value

    def validate(self, attrs):
        request = self.context["request"]
        if not is_superuser(request.user):
            if attrs.get("action") not in REPORTABLE_ACTIONS:
                raise serializers.ValidationError({"action": [
                    f"only {', '.join(sorted(REPORTABLE_ACTIONS))} may be reported by a non-superuser"]})
            attrs["user"] = user_summary(request.user)
        return attrs


class EventFilter(filters.FilterSet):
    action = filters.CharFilter()
    username = filters.CharFilter(method="filter_username",
                                  help_text="a user's events, and failed logins typed as any spelling of the name")
    client_ip = filters.CharFilter()
    app = filters.CharFilter()
    context_model_pk = filters.CharFilter(field_name="context__model__pk")
    context_model_app = filters.CharFilter(field_name="context__model__app")
    context_model_name = filters.CharFilter(field_name="context__model__model_name")
    context_authorized_app = filters.CharFilter(field_name="context__authorized_application__pk")
    context_device = filters.CharFilter(field_name="context__device__pk")
    actions = filters.MultipleChoiceFilter(field_name="action", choices=EventAction.choices)
    brand_name = filters.CharFilter(method="no_brand", help_text="brands are not built: matches no event")

    class Meta:
        model = Event
        fields = ["action", "client_ip", "app"]

    def no_brand(self, qs, name, value):
        return qs.none()

    def filter_username(self, qs, name, value):
        """The user's own events (``user.username``, or the user any spelling names), and failed logins,
        whose only name is the one typed: found by that exact text or by its canonical form (login_failed
        carries both; core/policies/reputation.py), so "alice" finds "ALICE" and "alice@example.com"."""
        from core.accounts.usernames import find_user
        from core.policies.reputation import canonical_username

        match = Q(user__username=value) | Q(context__username=value)
        match |= Q(context__username_canonical=canonical_username(value))
        user = find_user(value.strip(), ["username", "email"]) if value.strip() else None
        if user is not None:
            match |= Q(user__pk=user.pk)
        return qs.filter(match)


class EventViewSet(ScopedQuerysetMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                   mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = Event.objects.all()
    serializer_class = EventSerializer
    permission_classes = [ViewAccess]
    filterset_class = EventFilter
    search_fields = ["action", "app", "client_ip"]
    ordering_fields = ["created", "action", "client_ip"]
    ordering = ["-created"]
    outpost_actions = {"create"}
