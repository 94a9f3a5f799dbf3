"""Validators and small helpers the API modules share."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import durations

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off"}


def query_flag(request, name: str, default: bool) -> bool:
    """A boolean query parameter such as ``include_groups`` (authentik defaults these to true)."""
    raw = (request.query_params.get(name) if request is not None else None) or ""
    if raw.lower() in TRUE_VALUES:
        return True
    if raw.lower() in FALSE_VALUES:
        return False
    return default


def validate_duration(value: str) -> str:
    """authentik duration strings ("hours=1;minutes=30")."""
    try:
        durations.parse(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value


def validate_expression(value: str) -> str:
    """An administrator's Python expression must at least compile; name the line that does not.

    authentik runs an expression as the body of a function (so ``return`` is allowed); compile it so.
    """
    body = "\n".join(f"    {line}" for line in value.splitlines()) or "    pass"
    try:
        compile(f"def expression():\n{body}\n", "expression", "exec")
    except SyntaxError as exc:
        line = (exc.lineno or 2) - 1
        raise serializers.ValidationError(f"expression does not compile: {exc.msg} at line {line}") from None
    return value


def application_of(provider):
    """The application a provider is assigned to, or None."""
    try:
        return provider.application
    except ObjectDoesNotExist:
        return None


def seconds_or_none(text: str) -> float | None:
    try:
        return durations.seconds(text)
    except ValueError:
        return None


class NeutralList(serializers.ListField):
    """An authentik field for something Gatehouse does not model (roles, ...): always answered ``[]``, its
    documented neutral value, so that clients validating authentik's schema get the key they require.
    Read-only: a value sent for it is ignored, as there is nothing to store it in."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "not modelled by Gatehouse: always empty")
        super().__init__(read_only=True, source="*", **kwargs)

    def to_representation(self, data):
        return []


class RoleSerializer(serializers.Serializer):
    """authentik ``RoleSerializer`` (roles are not modelled: only ever inside an empty list)."""

    pk = serializers.UUIDField(read_only=True)
    name = serializers.CharField()


class ThemedUrlsSerializer(serializers.Serializer):
    """authentik ``ThemedUrlsSerializer``: an image per theme (Gatehouse has no themed images: null)."""

    light = serializers.CharField(required=False, allow_null=True)
    dark = serializers.CharField(required=False, allow_null=True)


class ModelNamesMixin(serializers.Serializer):
    """authentik's ``MetaNameSerializer`` fields: the model's verbose names and ``app_label.model_name``."""

    verbose_name = serializers.SerializerMethodField()
    verbose_name_plural = serializers.SerializerMethodField()
    meta_model_name = serializers.SerializerMethodField()

    def get_verbose_name(self, obj) -> str:
        return str(type(obj)._meta.verbose_name)

    def get_verbose_name_plural(self, obj) -> str:
        return str(type(obj)._meta.verbose_name_plural)

    def get_meta_model_name(self, obj) -> str:
        meta = type(obj)._meta
        return f"{meta.app_label}.{meta.model_name}"


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.JSONField):
    """A JSON object (``config``, ``attributes``): described as an object, as authentik's schema does."""


class RedirectURISerializer(serializers.Serializer):
    """authentik ``RedirectURISerializer`` (the items of a provider's ``redirect_uris``)."""

    matching_mode = serializers.ChoiceField(choices=["strict", "regex"])
    url = serializers.CharField()


@extend_schema_field(RedirectURISerializer(many=True))
class RedirectURIsField(serializers.JSONField):
    """``[{"matching_mode": "strict"|"regex", "url": "..."}]``, stored as JSON."""


# django-filter lookups: our exact filter names and authentik's ``<field>__iexact`` beside them.
IEXACT = ["exact", "iexact"]


def attributes_query(value: str, field: str = "attributes") -> dict:
    """authentik's ``?attributes={"key": value}`` filter as ORM lookups (``attributes__key=value``), each key
    matched exactly. Raises a 400 naming the expected form."""
    import json

    from rest_framework.exceptions import ValidationError

    try:
        wanted = json.loads(value)
    except ValueError:
        wanted = None
    if not isinstance(wanted, dict):
        raise ValidationError({"attributes": [f'{value!r} is not a JSON object like {{"team": "blue"}}']})
    return {f"{field}__{key}": item for key, item in wanted.items()}
