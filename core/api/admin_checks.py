"""The admin refuses what the REST API refuses. A model's admin form checks only what the model declares, so the
API serializer's own checks (redirect URIs as ``[{"matching_mode", "url"}]``, durations, an outpost's config
and provider types, a proxy provider's internal host in proxy mode...) were skipped: the admin saved providers
no redirect matched and outposts whose configuration the outposts then could not use.

``APIChecked`` on a ModelAdmin (with ``api_serializer``) runs, after the form's own cleaning, each plain field
through the serializer's field (its validators) and its ``validate_<field>``, then the serializer's
``validate()`` with the cleaned data (model instances, as the API's validated data has them); the API's
messages show under the fields. Relations are the form's (a choice among existing rows) and not re-checked.
"""

from __future__ import annotations

from django import forms
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as APIValidationError


def _messages(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list | tuple):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


class APICheckedForm(forms.ModelForm):
    api_serializer: type[serializers.Serializer]

    def clean(self):
        data = super().clean()
        serializer = self.api_serializer(instance=self.instance if self.instance.pk else None)
        for name, value in list(data.items()):
            field = serializer.fields.get(name)
            if field is None or field.read_only or name in self.errors or isinstance(
                    field, serializers.RelatedField | serializers.ManyRelatedField):
                continue
            try:
                value = field.run_validation(value)
                hook = getattr(serializer, f"validate_{name}", None)
                data[name] = hook(value) if hook else value
            except APIValidationError as exc:
                self.add_error(name, _messages(exc.detail))
        if self.errors:
            return data
        try:
            serializer.validate(dict(data))
        except APIValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {None: exc.detail}
            for name, errors in detail.items():
                self.add_error(name if name in self.fields else None, _messages(errors))
        return data


class APIChecked:
    """ModelAdmin mixin: its add and change forms also pass ``api_serializer``'s checks."""

    api_serializer: type[serializers.Serializer]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (APICheckedForm, form), {"api_serializer": self.api_serializer})
