"""REST API for tokens and app passwords (authentik ``authentik/core/api/tokens.py``: same path, fields,
filters and actions: ``view_key``, ``set_key``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from core import durations
from core.accounts.api import UserSerializer
from core.accounts.models import Group, Token, TokenIntents, TokenKeyUnreadable, User
from core.api.permissions import ScopedQuerysetMixin, ViewAccess, is_superuser
from core.events.record import record

LOGGER = logging.getLogger("gatehouse.api")


API_TOKEN_INTENTS = [TokenIntents.INTENT_API, TokenIntents.INTENT_APP_PASSWORD, TokenIntents.INTENT_RADIUS]
RADIUS_VIEW_KEY_REFUSED = (
    "token {identifier!r} is a network password (intent 'radius'): its key is shown once, in the answer that "
    "created it, and never again, so that a stolen API token or browser session cannot read the password a "
    "network device accepts; if it is lost, delete this token and create a new one "
    "(POST /api/v3/core/tokens/ with intent 'radius')")
# authentik's user/group attribute for the longest a person's token may live ("days=30"); without it, a year:
# long enough for a script's yearly rotation, short enough that a forgotten token dies.
TOKEN_MAXIMUM_LIFETIME_ATTRIBUTE = "goauthentik.io/user/token-maximum-lifetime"  # noqa: S105 - a name
DEFAULT_TOKEN_MAXIMUM_LIFETIME = timedelta(days=365)
MIN_SET_KEY_LENGTH = 16  # a key chosen by a person is still a password to the whole API


def token_maximum_lifetime(user: User) -> timedelta:
    """The user's (or their groups') attribute, or the default when it is missing or not a duration."""
    value = user.group_attributes().get(TOKEN_MAXIMUM_LIFETIME_ATTRIBUTE)
    try:
        return durations.parse(str(value)) if value is not None else DEFAULT_TOKEN_MAXIMUM_LIFETIME
    except ValueError as exc:
        LOGGER.warning("ignoring a bad token lifetime attribute; using the default", extra={
            "user": user.username, "attribute": TOKEN_MAXIMUM_LIFETIME_ATTRIBUTE, "reason": str(exc)})
        return DEFAULT_TOKEN_MAXIMUM_LIFETIME


class TokenSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="token_uuid", read_only=True)
    intent = serializers.ChoiceField(choices=API_TOKEN_INTENTS, default=TokenIntents.INTENT_API)
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)
    user_obj = UserSerializer(source="user", read_only=True)
    key = serializers.CharField(read_only=True, required=False,
                                help_text="the token's key; present only in the response that created it")

    class Meta:
        model = Token
        fields = ["pk", "managed", "identifier", "intent", "user", "user_obj", "description", "expires",
                  "expiring", "key"]
        read_only_fields = ["managed"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        plain = getattr(instance, "_plain_key", None)
        if plain:
            data["key"] = plain
        else:
            data.pop("key", None)
        return data

    def validate(self, attrs):
        request = self.context["request"]
        if self.instance is not None and self.instance.managed:
            raise serializers.ValidationError({"managed": [
                f"token {self.instance.identifier!r} is managed by Gatehouse ({self.instance.managed}); "
                "delete it to have it re-created instead of editing it"]})
        if not is_superuser(request.user):
            attrs["user"] = request.user  # people manage their own tokens only
            expiring = attrs.get("expiring", getattr(self.instance, "expiring", True))
            if not expiring:
                raise serializers.ValidationError({"expiring": ["only a superuser may create a non-expiring token"]})
            if "expires" in attrs:
                self._within_lifetime(attrs["expires"], request.user)
        elif "user" not in attrs and self.instance is None:
            attrs["user"] = request.user
        if attrs.get("expiring") is False:
            attrs["expires"] = None
        elif self.instance is None and attrs.get("intent") == TokenIntents.INTENT_RADIUS and "expires" not in attrs:
            # a network password is typed into a device once: the longest the user's tokens may live, not the
            # model's 30 minutes
            attrs["expires"] = timezone.now() + token_maximum_lifetime(attrs["user"])
        if self.instance is not None and "intent" in attrs and attrs["intent"] != self.instance.intent \
                and TokenIntents.INTENT_RADIUS in (attrs["intent"], self.instance.intent):
            # an API token turned into a network password would have had its key shown; a network password
            # turned into an API token would work against the API and show its key through view_key
            raise serializers.ValidationError({"intent": [
                f"token {self.instance.identifier!r}: a network password (intent 'radius') cannot become another "
                "kind of token, nor another token a network password; create a new token with the intent you "
                "need"]})
        return attrs

    @staticmethod
    def _within_lifetime(expires, user: User) -> None:
        """Refused, not shortened: a script asking for a year must not get a silently shorter token."""
        longest = token_maximum_lifetime(user)
        latest = timezone.now() + longest
        if expires is None or expires > latest:
            asked = "never" if expires is None else expires.isoformat()
            raise serializers.ValidationError({"expires": [
                f"expires {asked} is past the maximum lifetime of your tokens ({longest.days} days, "
                f"{latest.replace(microsecond=0).isoformat()}); choose an earlier date, or ask an administrator "
                f"to raise the {TOKEN_MAXIMUM_LIFETIME_ATTRIBUTE} attribute"]})

    def create(self, validated_data):
        token = Token(**validated_data)
        token._plain_key = token.set_key()
        token.save()
        return token


class TokenViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    # user_obj is a whole user (authentik's): its groups (and their parents, for is_superuser) in one query
    queryset = Token.objects.select_related("user").prefetch_related(
        Prefetch("user__groups", queryset=Group.objects.select_related("parent")))
    serializer_class = TokenSerializer
    permission_classes = [ViewAccess]
    lookup_field = "identifier"
    filterset_fields = ["identifier", "intent", "user__username", "description", "expires", "expiring", "managed"]
    search_fields = ["identifier", "intent", "user__username", "description"]
    ordering_fields = ["identifier", "expires", "created"]
    ordering = ["identifier"]
    user_actions = {"list", "retrieve", "create", "update", "partial_update", "destroy", "view_key"}
    people_only_actions = user_actions

    def scope_user(self, qs, user):
        return qs.filter(user=user, intent__in=API_TOKEN_INTENTS)

    def perform_create(self, serializer):
        serializer.save()  # the audit middleware records model_created (core/events/audit.py)

    @extend_schema(responses={200: inline_serializer("TokenView", {"key": serializers.CharField()}),
                              403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT, 410: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def view_key(self, request, identifier=None):
        """The token's key, to its owner or a superuser (anyone else: 404), with a ``secret_view``
        event, as authentik answers. A network password (intent ``radius``, Gatehouse's) is refused with 403:
        its key is shown once, at creation."""
        token = self.get_object()
        if token.intent == TokenIntents.INTENT_RADIUS:
            raise PermissionDenied(RADIUS_VIEW_KEY_REFUSED.format(identifier=token.identifier))
        try:
            key = token.read_key()
        except TokenKeyUnreadable as exc:
            return Response({"detail": UNREADABLE_KEY[exc.reason].format(identifier=token.identifier)},
                            status=status.HTTP_410_GONE if exc.reason == exc.NOT_KEPT else status.HTTP_409_CONFLICT)
        record("secret_view", user=request.user, token=token.identifier, what="token key")
        return Response({"key": key})

    @extend_schema(request=inline_serializer("TokenSetKey", {"key": serializers.CharField()}),
                   responses={204: None, 400: OpenApiTypes.OBJECT, 404: None})
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def set_key(self, request, identifier=None):
        """Give the token a key chosen by the caller (superusers; a ``secret_rotate`` event), as authentik's
        ``set_key``: for a key that must match one kept elsewhere. A managed token's key is derived by Gatehouse
        and cannot be set."""
        token = self.get_object()
        if token.managed:
            raise ValidationError({"managed": [f"token {token.identifier!r} is managed by Gatehouse "
                                               f"({token.managed}); its key cannot be set"]})
        key = request.data.get("key") if isinstance(request.data, dict) else None
        if not isinstance(key, str) or len(key) < MIN_SET_KEY_LENGTH:
            raise ValidationError({"key": [f"a key of at least {MIN_SET_KEY_LENGTH} characters is required"]})
        token.set_key(key)
        token.save()
        record("secret_rotate", user=request.user, token=token.identifier, message="token key set through the API")
        return Response(status=status.HTTP_204_NO_CONTENT)


UNREADABLE_KEY = {
    TokenKeyUnreadable.NOT_KEPT: (
        "token {identifier!r} was created before Gatehouse kept token keys (only its hash is stored), so its "
        "key cannot be shown again; create a new token (POST /api/v3/core/tokens/), use its key, and delete "
        "this one"),
    TokenKeyUnreadable.SECRET_KEY_CHANGED: (
        "the key of token {identifier!r} was stored under a different AUTHENTIK_SECRET_KEY than this core "
        "runs with, and the core would refuse it; start the core with the original AUTHENTIK_SECRET_KEY, "
        "or create a new token"),
}
