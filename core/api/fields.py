"""Validators and small helpers the API modules share."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
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
