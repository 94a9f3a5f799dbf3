"""Resolve a multi-table-inheritance base row (Provider, Stage, Policy, PropertyMapping) to its subclass.

Django has no built-in for this and django-model-utils would be a dependency for ten lines.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.db import models


def _child_accessors(model: type[models.Model]) -> list[str]:
    return [
        rel.get_accessor_name()
        for rel in model._meta.related_objects
        if rel.one_to_one and rel.parent_link and issubclass(rel.related_model, model)
    ]


def concrete(obj: models.Model) -> models.Model:
    """The most derived instance of ``obj`` (``obj`` itself when it has no subclass row)."""
    for accessor in _child_accessors(type(obj)):
        try:
            child = getattr(obj, accessor)
        except ObjectDoesNotExist:
            continue
        return concrete(child)
    return obj


def subclass_lookups(model: type[models.Model]) -> list[str]:
    """select_related() paths that load every subclass row in one query."""
    paths: list[str] = []
    for accessor in _child_accessors(model):
        paths.append(accessor)
        child_model = getattr(model, accessor).related.related_model
        paths.extend(f"{accessor}__{sub}" for sub in subclass_lookups(child_model))
    return paths
