"""PasswordPolicy: length and character classes of a password found in the flow context."""

from __future__ import annotations

from core.policies.models import PasswordPolicy
from core.policies.types import PolicyRequest, PolicyResult


def password_from_context(policy: PasswordPolicy, request: PolicyRequest) -> str | None:
    """authentik looks in the prompt data first, then the plain context."""
    prompt = request.context.get("prompt_data") or {}
    value = prompt.get(policy.password_field, request.context.get(policy.password_field))
    return value if isinstance(value, str) else None


def check(policy: PasswordPolicy, password: str) -> PolicyResult:
    if not policy.check_static_rules:
        return PolicyResult(True)
    rules = (
        (len(password) >= policy.length_min, f"Password must be at least {policy.length_min} characters long."),
        (sum(c.isupper() for c in password) >= policy.amount_uppercase,
         f"Password must contain at least {policy.amount_uppercase} uppercase characters."),
        (sum(c.islower() for c in password) >= policy.amount_lowercase,
         f"Password must contain at least {policy.amount_lowercase} lowercase characters."),
        (sum(c.isdigit() for c in password) >= policy.amount_digits,
         f"Password must contain at least {policy.amount_digits} digits."),
        (sum(c in policy.symbol_charset for c in password) >= policy.amount_symbols,
         f"Password must contain at least {policy.amount_symbols} symbols."),
    )
    failed = [message for ok, message in rules if not ok]
    if not failed:
        return PolicyResult(True)
    return PolicyResult(False, (policy.error_message,) if policy.error_message else tuple(failed))


def evaluate(policy: PasswordPolicy, request: PolicyRequest) -> PolicyResult:
    password = password_from_context(policy, request)
    if password is None:
        return PolicyResult(False, (f"Password not set in context (field {policy.password_field!r}).",))
    return check(policy, password)
