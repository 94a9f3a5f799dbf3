"""Prompt stage (``ak-stage-prompt``): ask for fields, check them, keep them in ``prompt_data``.

Two password-type fields must match (password / password_repeat). The stage's validation
policies (e.g. a PasswordPolicy) run over the answers; their messages become response errors.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from core.accounts.usernames import problem as username_problem
from core.flows.planner import policy_request
from core.flows.stages.base import Passed, StageView, error
from core.policies.engine import evaluate_policy
from core.policies.types import PolicyResult

NON_INPUT_TYPES = ("separator", "static")
MAX_VALUE = 4096


class PromptStageView(StageView):
    component = "ak-stage-prompt"

    def _fields(self):
        return list(self.stage.fields.all().order_by("order", "name"))

    def challenge_fields(self) -> dict:
        prior = self.ctx.context.get("prompt_data") or {}
        return {"fields": [
            {"field_key": f.field_key, "label": f.label, "type": f.type, "required": f.required,
             "placeholder": f.placeholder, "initial_value": prior.get(f.field_key, f.initial_value)
             if f.type != "password" else "", "order": f.order, "sub_text": f.sub_text, "choices": None}
            for f in self._fields()]}

    def post(self, data: dict):
        errors: dict = {}
        values: dict = {}
        fields = self._fields()
        for f in fields:
            if f.type in NON_INPUT_TYPES:
                continue
            raw = data.get(f.field_key)
            if f.type == "checkbox":
                values[f.field_key] = bool(raw) and raw not in ("false", "off", "0")
                continue
            value = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
            if f.type != "password":
                value = value.strip()
            if len(value) > MAX_VALUE:
                errors[f.field_key] = error(f"At most {MAX_VALUE} characters.", "max_length")
                continue
            if not value:
                if f.required:
                    errors[f.field_key] = error("This field is required.", "required")
                continue
            if f.type == "email":
                try:
                    validate_email(value)
                except ValidationError:
                    errors[f.field_key] = error("Enter a valid email address.")
                    continue
            if f.type == "username":  # the rules for new names (core/accounts/usernames.py)
                user = self.ctx.pending_user or self.ctx.request.user
                refused = value != getattr(user, "username", None) and username_problem(
                    value, exclude_pk=getattr(user, "pk", None))
                if refused:
                    errors[f.field_key] = error(refused)
                    continue
            if f.type == "number":
                try:
                    value = int(value)
                except ValueError:
                    errors[f.field_key] = error("A valid integer is required.")
                    continue
            values[f.field_key] = value
        passwords = [f.field_key for f in fields if f.type == "password"]
        if len(passwords) == 2 and values.get(passwords[0]) != values.get(passwords[1]):
            errors.setdefault(passwords[1], error("Passwords don't match."))
        if errors:
            return self.show(errors)
        prompt_data = {**(self.ctx.context.get("prompt_data") or {}), **values}
        policies = list(self.stage.validation_policies.all())
        if policies:
            request = policy_request(self.ctx.request, self.ctx.pending_user or self.ctx.request.user,
                                     {**self.ctx.context, "prompt_data": prompt_data}, self.stage)
            messages = []
            for policy in policies:
                try:
                    result = evaluate_policy(policy, request)
                except Exception as exc:  # noqa: BLE001 - a broken validation policy fails closed
                    result = PolicyResult(False, (f"Policy {policy.name!r} failed: {type(exc).__name__}",))
                if not result.passing:
                    messages.extend(result.messages or (f"Policy {policy.name!r} denied the values.",))
            if messages:
                return self.show({"non_field_errors": [e for m in messages for e in error(m)]})
        self.ctx.context["prompt_data"] = prompt_data
        return Passed()
