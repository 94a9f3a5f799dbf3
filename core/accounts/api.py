"""REST API for users, groups, applications and the provider list (authentik ``authentik/core/api/*``: same
paths, field names and filters). Tokens are in api_tokens.py, login sessions in api_sessions.py."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Prefetch
from django.utils.text import slugify
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from core import durations
from core.accounts.launch_url import launch_url_problem, launchable
from core.accounts.models import (
    Application,
    Group,
    Provider,
    Token,
    TokenIntents,
    User,
    UserTypes,
)
from core.accounts.recovery_links import RECOVERY_PATH, recovery_key
from core.accounts.usernames import validate_new
from core.api.fields import (
    NeutralList,
    RoleSerializer,
    ThemedUrlsSerializer,
    application_of,
    attributes_query,
    query_flag,
    validate_duration,
)
from core.api.outpost_config import PolicyTestResultSerializer
from core.api.permissions import ScopedQuerysetMixin, ViewAccess
from core.events.record import record
from core.inheritance import concrete, subclass_lookups
from core.policies.engine import user_has_access
from core.system import base_url

LOGGER = logging.getLogger("gatehouse.api")
RECOVERY_LINK_DURATION = "minutes=30"  # authentik's default token_duration


def include_param(name: str, default: bool = True) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.BOOL, default=default)


# --- users and groups ---------------------------------------------------------------------------


def _is_superuser_prefetched(user: User) -> bool:
    """``User.is_superuser`` from prefetched groups, so a list of N users is not N extra queries."""
    if not user.is_active:
        return False
    for group in user.groups.all():
        if any(g.is_superuser for g in group.ancestors()):
            return True
    return False


class GroupMemberSerializer(serializers.ModelSerializer):
    """A user as listed inside a group (authentik ``PartialUserSerializer``)."""

    pk = serializers.IntegerField(read_only=True)
    uid = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["pk", "username", "name", "is_active", "last_login", "email", "attributes", "uid", "path",
                  "type", "uuid"]


class UserGroupSerializer(serializers.ModelSerializer):
    """A group as listed inside a user (authentik ``UserGroupSerializer``)."""

    pk = serializers.UUIDField(source="group_uuid", read_only=True)
    num_pk = serializers.IntegerField(read_only=True)  # always set on save (core/accounts/models.py)
    parent_name = serializers.CharField(source="parent.name", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Group
        fields = ["pk", "num_pk", "name", "is_superuser", "parent", "parent_name", "attributes"]


class RelatedGroupSerializer(serializers.ModelSerializer):
    """A parent or child group inside a group (authentik ``RelatedGroupSerializer``)."""

    pk = serializers.UUIDField(source="group_uuid", read_only=True)
    group_uuid = serializers.UUIDField(read_only=True)

    class Meta:
        model = Group
        fields = ["pk", "name", "is_superuser", "attributes", "group_uuid"]


class UserSerializer(serializers.ModelSerializer):
    pk = serializers.IntegerField(read_only=True)
    is_superuser = serializers.SerializerMethodField()
    groups = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all(), many=True, required=False)
    groups_obj = serializers.SerializerMethodField()
    roles = NeutralList(child=serializers.UUIDField())
    roles_obj = NeutralList(child=RoleSerializer(), allow_null=True)
    avatar = serializers.SerializerMethodField()
    uid = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["pk", "username", "name", "is_active", "last_login", "is_superuser", "groups", "groups_obj",
                  "roles", "roles_obj", "email", "avatar", "attributes", "uid", "path", "type", "uuid",
                  "password_change_date", "last_updated", "date_joined"]
        read_only_fields = ["last_login", "uuid", "password_change_date", "last_updated", "date_joined"]

    def get_is_superuser(self, user) -> bool:
        return _is_superuser_prefetched(user)

    def get_avatar(self, user) -> str:
        return ""

    @extend_schema_field(UserGroupSerializer(many=True, allow_null=True))
    def get_groups_obj(self, user) -> list[dict] | None:
        if not query_flag(self.context.get("request"), "include_groups", True):
            return None
        # Each group serialized once per answer, not once per member: a page of 1,000 users in 50 groups spent
        # half its time building group serializers (bench/ldap.py, the LDAP outpost's directory fetch).
        seen = self.__dict__.setdefault("_groups_data", {})
        listed = []
        for group in user.groups.all():
            if group.pk not in seen:
                seen[group.pk] = UserGroupSerializer(group).data
            listed.append(seen[group.pk])
        return listed

    def validate_username(self, value):
        current = self.instance.username if self.instance is not None else None
        return validate_new(value, current=current, exclude_pk=getattr(self.instance, "pk", None))

    def validate_type(self, value):
        # Internal service accounts belong to outposts (ak-outpost-<uuid>); minting one by hand would
        # mint an outpost identity.
        current = self.instance.type if self.instance is not None else None
        if value == UserTypes.INTERNAL_SERVICE_ACCOUNT and current != value:
            raise serializers.ValidationError("internal_service_account is reserved for outposts; use "
                                              "service_account for a machine user")
        return value

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("attributes must be a JSON object")
        return value

    def create(self, validated_data):
        groups = validated_data.pop("groups", [])
        user = User(**validated_data)
        user.set_unusable_password()  # set one with POST .../set_password/
        user.save()
        user.groups.set(groups)
        return user


class UserSelfSerializer(serializers.ModelSerializer):
    """``users/me`` (authentik ``UserSelfSerializer``)."""

    pk = serializers.IntegerField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    is_current = serializers.SerializerMethodField()
    groups = serializers.SerializerMethodField()
    roles = NeutralList(child=inline_serializer("UserSelfRole", {"name": serializers.CharField(),
                                                                 "pk": serializers.CharField()}))
    avatar = serializers.SerializerMethodField()
    uid = serializers.CharField(read_only=True)
    settings = serializers.SerializerMethodField()
    system_permissions = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["pk", "username", "name", "is_active", "is_superuser", "is_current", "groups", "roles", "email",
                  "avatar", "uid", "settings", "type", "system_permissions"]

    def get_is_current(self, user) -> bool:
        """authentik: whether this user owns the browser session (false only while impersonating, which
        Gatehouse does not do)."""
        return True

    @extend_schema_field(inline_serializer("UserSelfGroup", {"name": serializers.CharField(),
                                                             "pk": serializers.CharField()}, many=True))
    def get_groups(self, user) -> list[dict]:
        return [{"name": g.name, "pk": str(g.pk)} for g in user.groups.all()]

    def get_avatar(self, user) -> str:
        return ""

    def get_settings(self, user) -> dict:
        return user.attributes.get("settings", {}) if isinstance(user.attributes, dict) else {}

    def get_system_permissions(self, user) -> list[str]:
        return []


class SessionUserSerializer(serializers.Serializer):
    user = UserSelfSerializer()
    users = NeutralList(child=UserSelfSerializer(),
                        help_text="authentik's other accounts signed in to this browser; Gatehouse has none")


class ServiceAccountSerializer(serializers.Serializer):
    """authentik ``UserServiceAccountSerializer``."""

    name = serializers.CharField(max_length=150)
    create_group = serializers.BooleanField(default=False)
    expiring = serializers.BooleanField(default=True)
    expires = serializers.DateTimeField(required=False)

    def validate_name(self, value):
        validate_new(value)  # also refuses an existing name, in any spelling (core/accounts/usernames.py)
        if Group.objects.filter(name=value).exists() and self.initial_data.get("create_group"):
            raise serializers.ValidationError(f"a group named {value!r} already exists; pick another name")
        return value


class ServiceAccountCreatedSerializer(serializers.Serializer):
    username = serializers.CharField()
    token = serializers.CharField()
    user_uid = serializers.CharField()
    user_pk = serializers.IntegerField()
    group_pk = serializers.UUIDField(read_only=True, required=False)


class PasswordSetSerializer(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False, min_length=1)


class RecoveryLinkRequestSerializer(serializers.Serializer):
    token_duration = serializers.CharField(default=RECOVERY_LINK_DURATION, validators=[validate_duration],
                                           help_text='how long the link works, as "minutes=30"')


class LinkSerializer(serializers.Serializer):
    link = serializers.CharField()


class UserAccountSerializer(serializers.Serializer):
    """authentik ``UserAccountSerializer``: the user a group action is about."""

    pk = serializers.IntegerField()


@extend_schema_field(OpenApiTypes.STR)
class NamesFilter(filters.ModelMultipleChoiceFilter):
    """Repeatable ``?x=a&x=b`` matched by name (authentik's groups_by_name / members_by_username)."""


class UserFilter(filters.FilterSet):
    username = filters.CharFilter()
    email = filters.CharFilter()
    name = filters.CharFilter()
    is_active = filters.BooleanFilter()
    path = filters.CharFilter()
    uuid = filters.UUIDFilter()
    type = filters.MultipleChoiceFilter(choices=UserTypes.choices)
    groups_by_name = NamesFilter(field_name="groups__name", to_field_name="name",
                                                       queryset=Group.objects.all())
    groups_by_pk = filters.ModelMultipleChoiceFilter(field_name="groups", queryset=Group.objects.all())
    is_superuser = filters.BooleanFilter(method="filter_is_superuser")
    path_startswith = filters.CharFilter(field_name="path", lookup_expr="startswith")
    attributes = filters.CharFilter(method="filter_attributes", help_text='JSON object: {"key": value}')
    roles_by_name = filters.CharFilter(method="no_roles", help_text="roles are not modelled: matches no user")
    roles_by_pk = filters.UUIDFilter(method="no_roles", help_text="roles are not modelled: matches no user")

    class Meta:
        model = User
        fields = {"username": ["exact"], "email": ["exact"], "name": ["exact"], "is_active": ["exact"],
                  "path": ["exact"], "uuid": ["exact"], "type": ["exact"],
                  "date_joined": ["exact", "gt", "lt"], "last_updated": ["exact", "gt", "lt"],
                  "last_login": ["exact", "gt", "lt", "isnull"]}

    def filter_is_superuser(self, qs, name, value):
        """Members of a superuser group or of any group below one, as ``User.is_superuser`` (active or not)."""
        groups = Group.objects.select_related("parent")
        admin = [g.pk for g in groups if any(a.is_superuser for a in g.ancestors())]
        return qs.filter(groups__in=admin) if value else qs.exclude(groups__in=admin)

    def filter_attributes(self, qs, name, value):
        return qs.filter(**attributes_query(value))

    def no_roles(self, qs, name, value):
        return qs.none()


@extend_schema_view(list=extend_schema(parameters=[include_param("include_groups"), include_param("include_roles")]),
                   retrieve=extend_schema(parameters=[include_param("include_groups")]))
class UserViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    queryset = User.objects.prefetch_related(Prefetch("groups", queryset=Group.objects.select_related("parent")))
    serializer_class = UserSerializer
    permission_classes = [ViewAccess]
    filterset_class = UserFilter
    search_fields = ["username", "name", "email"]
    ordering_fields = ["username", "name", "email", "last_login", "date_joined", "is_active", "id"]
    ordering = ["username"]
    outpost_actions = {"list", "retrieve"}
    outpost_types = {"ldap"}
    user_actions = {"me"}

    def scope_outpost(self, qs, outpost):
        return qs if outpost.serves("ldap") else qs.none()

    def get_queryset(self):
        if getattr(self, "action", None) == "me":
            return User.objects.none()
        return super().get_queryset().distinct()

    def perform_destroy(self, instance):
        if instance.pk == self.request.user.pk:
            raise PermissionDenied("you cannot delete your own account through the API; ask another admin")
        instance.delete()

    @extend_schema(responses=SessionUserSerializer, parameters=[])
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def me(self, request):
        """The signed-in user, as ``{"user": {...}}``."""
        return Response(SessionUserSerializer({"user": request.user}).data)

    @extend_schema(request=ServiceAccountSerializer, responses=ServiceAccountCreatedSerializer)
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def service_account(self, request):
        """A service account and its app-password token (key shown once), optionally with its own group."""
        body = ServiceAccountSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with transaction.atomic():
            user = User(username=data["name"], name=data["name"], type=UserTypes.SERVICE_ACCOUNT,
                        path="users/service-accounts")
            user.set_unusable_password()
            user.save()
            token = Token(identifier=slugify(f"service-account-{user.username}-password"), user=user,
                          intent=TokenIntents.INTENT_APP_PASSWORD, expiring=data["expiring"],
                          description=f"App password for service account {user.username}")
            if "expires" in data:
                token.expires = data["expires"]
            if not data["expiring"]:
                token.expires = None
            key = token.set_key()
            token.save()
            answer = {"username": user.username, "token": key, "user_uid": user.uid, "user_pk": user.pk}
            if data["create_group"]:
                group = Group.objects.create(name=user.username)
                user.groups.add(group)
                answer["group_pk"] = str(group.pk)
        return Response(answer)  # 200, as authentik answers (its clients read the token from a 200 only)

    @extend_schema(request=PasswordSetSerializer, responses={204: None})
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def set_password(self, request, pk=None):
        user = self.get_object()
        body = PasswordSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user.set_password(body.validated_data["password"])
        user.save()
        record("password_set", user=request.user, target=user.username, message="password set through the API")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=RecoveryLinkRequestSerializer, responses=LinkSerializer)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def recovery(self, request, pk=None):
        """A one-time link into the recovery flow (as ``ak create_recovery_key``: the user's second factor when
        they have one, a new password, then the login). Absolute on the base URL when one is set, else a path
        on this core (links leave the core only from the base URL, docs/DESIGN.md section 5)."""
        user = self.get_object()
        body = RecoveryLinkRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = recovery_key(user, durations.parse(body.validated_data["token_duration"]),
                           f"Recovery link created through the API by {request.user.username}")
        record("secret_rotate", user=request.user, target=user.username,
               message="recovery link created through the API")
        return Response({"link": f"{base_url.current()}{RECOVERY_PATH}{key}"})


class ParentsField(serializers.ListField):
    """authentik's ``parents`` (a group may have several there); a Gatehouse group has one ``parent``: read as
    a list of zero or one, and written so (more than one is refused, naming the field to use)."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.UUIDField(), source="*", **kwargs)

    def to_representation(self, group):
        return [str(group.parent_id)] if group.parent_id else []

    def to_internal_value(self, data):
        pks = super().to_internal_value(data)
        if len(pks) > 1:
            raise serializers.ValidationError("a Gatehouse group has at most one parent; send one pk (or use "
                                              "`parent`)")
        if not pks:
            return {"parent": None}
        parent = Group.objects.filter(pk=pks[0]).first()
        if parent is None:
            raise serializers.ValidationError(f"no group {pks[0]}; list groups with GET /api/v3/core/groups/")
        return {"parent": parent}


class GroupSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="group_uuid", read_only=True)
    parent_name = serializers.CharField(source="parent.name", read_only=True, allow_null=True, default=None)
    users = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), many=True, required=False)
    users_obj = serializers.SerializerMethodField()
    num_pk = serializers.IntegerField(read_only=True)  # always set on save (core/accounts/models.py)
    parents = ParentsField(required=False)
    parents_obj = serializers.SerializerMethodField()
    children = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    children_obj = serializers.SerializerMethodField()
    roles = NeutralList(child=serializers.UUIDField())
    roles_obj = NeutralList(child=RoleSerializer())
    inherited_roles_obj = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = ["pk", "num_pk", "name", "is_superuser", "parent", "parent_name", "parents", "parents_obj",
                  "users", "users_obj", "attributes", "roles", "roles_obj", "inherited_roles_obj", "children",
                  "children_obj"]

    def _include(self, flag: str) -> bool:
        return query_flag(self.context.get("request"), flag, False)  # authentik's default: left out (null)

    @extend_schema_field(RelatedGroupSerializer(many=True, allow_null=True))
    def get_parents_obj(self, group) -> list[dict] | None:
        if not self._include("include_parents"):
            return None
        return [RelatedGroupSerializer(group.parent).data] if group.parent_id else []

    @extend_schema_field(RelatedGroupSerializer(many=True, allow_null=True))
    def get_children_obj(self, group) -> list[dict] | None:
        if not self._include("include_children"):
            return None
        return RelatedGroupSerializer(group.children.all(), many=True).data

    @extend_schema_field(RoleSerializer(many=True, allow_null=True))
    def get_inherited_roles_obj(self, group) -> list[dict] | None:
        return [] if self._include("include_inherited_roles") else None

    @extend_schema_field(GroupMemberSerializer(many=True, allow_null=True))
    def get_users_obj(self, group) -> list[dict] | None:
        if not query_flag(self.context.get("request"), "include_users", True):
            return None
        return GroupMemberSerializer(group.users.all(), many=True).data

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("attributes must be a JSON object")
        return value

    def validate(self, attrs):
        if "parent" in attrs:
            self.validate_parent(attrs["parent"])
        return attrs

    def validate_parent(self, parent):
        if parent is not None and self.instance is not None:
            if any(g.pk == self.instance.pk for g in parent.ancestors()):
                raise serializers.ValidationError(f"group {parent.name!r} is this group or one of its "
                                                  "descendants; a parent cannot make a cycle")
        return parent


class GroupFilter(filters.FilterSet):
    name = filters.CharFilter()
    is_superuser = filters.BooleanFilter()
    members_by_username = NamesFilter(field_name="users__username", to_field_name="username",
                                                            queryset=User.objects.all())
    members_by_pk = filters.ModelMultipleChoiceFilter(field_name="users", queryset=User.objects.all())
    attributes = filters.CharFilter(method="filter_attributes", help_text='JSON object: {"key": value}')

    class Meta:
        model = Group
        fields = ["name", "is_superuser", "parent"]

    def filter_attributes(self, qs, name, value):
        return qs.filter(**attributes_query(value))


GROUP_INCLUDES = [include_param("include_users"), include_param("include_children", False),
                  include_param("include_parents", False), include_param("include_inherited_roles", False)]


@extend_schema_view(list=extend_schema(parameters=GROUP_INCLUDES), retrieve=extend_schema(parameters=GROUP_INCLUDES))
class GroupViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    queryset = Group.objects.select_related("parent").prefetch_related("users", "children")
    serializer_class = GroupSerializer
    permission_classes = [ViewAccess]
    filterset_class = GroupFilter
    search_fields = ["name"]
    ordering_fields = ["name", "is_superuser", "num_pk"]
    ordering = ["name"]
    outpost_actions = {"list", "retrieve"}
    outpost_types = {"ldap"}

    def scope_outpost(self, qs, outpost):
        return qs if outpost.serves("ldap") else qs.none()

    def get_queryset(self):
        return super().get_queryset().distinct()

    def _member(self, request) -> User:
        body = UserAccountSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = User.objects.filter(pk=body.validated_data["pk"]).first()
        if user is None:
            raise NotFound(f"no user with pk {body.validated_data['pk']}; list users with GET /api/v3/core/users/")
        return user

    @extend_schema(request=UserAccountSerializer, responses={204: None, 404: None})
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def add_user(self, request, pk=None):
        """Add a user to this group (authentik's ``add_user``)."""
        group = self.get_object()
        group.users.add(self._member(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=UserAccountSerializer, responses={204: None, 404: None})
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def remove_user(self, request, pk=None):
        """Remove a user from this group (authentik's ``remove_user``)."""
        group = self.get_object()
        group.users.remove(self._member(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- providers (the common part) ----------------------------------------------------------------


class ProviderSerializer(serializers.ModelSerializer):
    """Fields every provider kind has (authentik ``ProviderSerializer``)."""

    pk = serializers.IntegerField(read_only=True)
    component = serializers.SerializerMethodField()
    assigned_application_slug = serializers.SerializerMethodField()
    assigned_application_name = serializers.SerializerMethodField()
    assigned_backchannel_application_slug = serializers.SerializerMethodField()
    assigned_backchannel_application_name = serializers.SerializerMethodField()
    verbose_name = serializers.SerializerMethodField()
    verbose_name_plural = serializers.SerializerMethodField()
    meta_model_name = serializers.SerializerMethodField()

    class Meta:
        model = Provider
        fields = ["pk", "name", "authentication_flow", "authorization_flow", "invalidation_flow",
                  "property_mappings", "component", "assigned_application_slug", "assigned_application_name",
                  "assigned_backchannel_application_slug", "assigned_backchannel_application_name",
                  "verbose_name", "verbose_name_plural", "meta_model_name"]

    def _concrete(self, obj):
        return concrete(obj) if type(obj) is Provider else obj

    def get_component(self, obj) -> str:
        return f"ak-provider-{type(self._concrete(obj))._meta.model_name.removesuffix('provider')}-form"

    def get_assigned_application_slug(self, obj) -> str | None:
        app = application_of(obj)
        return app.slug if app else None

    def get_assigned_application_name(self, obj) -> str | None:
        app = application_of(obj)
        return app.name if app else None

    def get_assigned_backchannel_application_slug(self, obj) -> str | None:
        app = obj.backchannel_application.first()
        return app.slug if app else None

    def get_assigned_backchannel_application_name(self, obj) -> str | None:
        app = obj.backchannel_application.first()
        return app.name if app else None

    def get_verbose_name(self, obj) -> str:
        return str(type(self._concrete(obj))._meta.verbose_name)

    def get_verbose_name_plural(self, obj) -> str:
        return str(type(self._concrete(obj))._meta.verbose_name_plural)

    def get_meta_model_name(self, obj) -> str:
        meta = type(self._concrete(obj))._meta
        return f"{meta.app_label}.{meta.model_name}"


class ProviderFilter(filters.FilterSet):
    application__isnull = filters.BooleanFilter(field_name="application", lookup_expr="isnull")
    backchannel = filters.BooleanFilter(method="filter_backchannel")

    class Meta:
        model = Provider
        fields = ["name"]

    def filter_backchannel(self, qs, name, value):
        return qs.filter(backchannel_application__isnull=not value)


class ProviderViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, mixins.ListModelMixin,
                      viewsets.GenericViewSet):
    """``/providers/all/``: every provider kind, read and delete (create through the kind's endpoint)."""

    queryset = Provider.objects.select_related(*subclass_lookups(Provider), "application")
    serializer_class = ProviderSerializer
    filterset_class = ProviderFilter
    search_fields = ["name"]
    ordering_fields = ["name", "id"]
    ordering = ["name"]

    def perform_destroy(self, instance):
        concrete(instance).delete()  # the subclass row's delete, so its signals fire


# --- applications -------------------------------------------------------------------------------


class ApplicationSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="pbm_uuid", read_only=True)
    pbm_uuid = serializers.UUIDField(read_only=True)
    provider_obj = serializers.SerializerMethodField()
    backchannel_providers_obj = serializers.SerializerMethodField()
    launch_url = serializers.SerializerMethodField()
    meta_icon_url = serializers.SerializerMethodField()
    meta_icon_themed_urls = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = ["pk", "pbm_uuid", "name", "slug", "provider", "provider_obj", "backchannel_providers",
                  "backchannel_providers_obj", "launch_url", "open_in_new_tab", "meta_launch_url", "meta_icon",
                  "meta_icon_url", "meta_icon_themed_urls", "meta_description", "meta_publisher",
                  "policy_engine_mode", "group"]
        extra_kwargs = {"backchannel_providers": {"required": False}}

    def get_meta_icon_url(self, app) -> str | None:
        return app.meta_icon or None

    @extend_schema_field(ThemedUrlsSerializer(allow_null=True))
    def get_meta_icon_themed_urls(self, app) -> dict | None:
        return None

    @extend_schema_field(ProviderSerializer(allow_null=True))
    def get_provider_obj(self, app) -> dict | None:
        if app.provider is None:
            return None
        return ProviderSerializer(concrete(app.provider), context=self.context).data

    @extend_schema_field(ProviderSerializer(many=True))
    def get_backchannel_providers_obj(self, app) -> list[dict]:
        return [ProviderSerializer(concrete(p), context=self.context).data for p in app.backchannel_providers.all()]

    def get_launch_url(self, app) -> str | None:
        if app.meta_launch_url:
            return app.meta_launch_url if launchable(app.meta_launch_url) else None
        if app.provider is not None:
            external = getattr(concrete(app.provider), "external_host", "")
            if launchable(external):
                return external
        return None

    def validate_meta_launch_url(self, value):
        problem = launch_url_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs):
        provider = attrs.get("provider", getattr(self.instance, "provider", None))
        backchannel = attrs.get("backchannel_providers")
        if provider is not None and backchannel and any(p.pk == provider.pk for p in backchannel):
            raise serializers.ValidationError({"backchannel_providers": [
                f"provider {provider.name!r} is already this application's main provider"]})
        return attrs


FOR_USER = OpenApiParameter("for_user", OpenApiTypes.INT, description="a user's pk: only the applications "
                            "that user may use (their bindings pass)")


@extend_schema_view(list=extend_schema(parameters=[
    FOR_USER,
    OpenApiParameter("only_with_launch_url", OpenApiTypes.BOOL, description="only applications with a launch URL"),
    OpenApiParameter("superuser_full_list", OpenApiTypes.BOOL,
                     description="every application (the default for a superuser, the only caller here)"),
]))
class ApplicationViewSet(viewsets.ModelViewSet):
    queryset = Application.objects.select_related("provider").prefetch_related("backchannel_providers")
    serializer_class = ApplicationSerializer
    lookup_field = "slug"
    filterset_fields = ["name", "slug", "meta_launch_url", "meta_description", "meta_publisher", "group"]
    search_fields = ["name", "slug", "meta_launch_url", "meta_description", "meta_publisher", "group"]
    ordering_fields = ["name", "slug", "group"]
    ordering = ["name"]

    def _for_user(self) -> User | None:
        raw = self.request.query_params.get("for_user")
        if not raw:
            return None
        user = User.objects.filter(pk=raw).first() if raw.isdigit() else None
        if user is None:
            raise NotFound(f"for_user={raw!r}: no user with that pk; list users with GET /api/v3/core/users/")
        return user

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if getattr(self, "action", None) != "list":
            return queryset
        user = self._for_user()
        launch_only = query_flag(self.request, "only_with_launch_url", False)
        if user is None and not launch_only:
            return queryset
        serializer = ApplicationSerializer(context=self.get_serializer_context())
        keep = [app.pk for app in queryset
                if (user is None or user_has_access(user, app)[0])
                and (not launch_only or serializer.get_launch_url(app))]
        return queryset.filter(pk__in=keep)

    @extend_schema(parameters=[FOR_USER], filters=False, responses=PolicyTestResultSerializer)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def check_access(self, request, slug=None):
        """Whether a user (``for_user``, else the caller) may use this application, and the bindings' messages."""
        application = self.get_object()
        user = self._for_user() or request.user
        passing, messages = user_has_access(user, application)
        return Response({"passing": passing, "messages": messages, "log_messages": []})
