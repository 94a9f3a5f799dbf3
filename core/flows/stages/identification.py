"""Identification stage (``ak-stage-identification``): who is logging in (username or email).

No user enumeration: with ``pretend_user_exists`` (the default) an unknown name proceeds like a
known one, to a password stage that fails identically. With a password stage attached, the
password is checked here with the same rate limit and the same failure for unknown users.
"""

from __future__ import annotations

from core.accounts.usernames import find_user
from core.flows.stages.base import Passed, StageView
from core.flows.stages.password import (
    rate_limit_message,
    record_failure,
    record_success,
    verify_password,
)

FAILED = "Failed to authenticate."


def _flow_url(flow) -> str | None:
    return f"/if/flow/{flow.slug}/" if flow is not None else None


class IdentificationStageView(StageView):
    component = "ak-stage-identification"

    def challenge_fields(self) -> dict:
        stage = self.stage
        password_stage = stage.password_stage
        application = self.ctx.context.get("application_name")
        return {
            "user_fields": list(stage.user_fields or []),
            "password_fields": password_stage is not None,
            "allow_show_password": bool(password_stage and password_stage.allow_show_password),
            "application_pre": application,
            "flow_designation": self.ctx.flow.designation,
            "captcha_stage": None,
            "enroll_url": _flow_url(stage.enrollment_flow),
            "recovery_url": _flow_url(stage.recovery_flow),
            "passwordless_url": _flow_url(stage.passwordless_flow),
            "primary_action": "Log in" if password_stage is not None else "Continue",
            "sources": [],
            "show_source_labels": stage.show_source_labels,
            "enable_remember_me": stage.enable_remember_me,
            "pending_user_identifier": None,
        }

    def post(self, data: dict):
        uid = data.get("uid_field")
        if not isinstance(uid, str) or not uid.strip():
            return self.invalid("uid_field", "This field is required.", "required")
        uid = uid.strip()[:255]
        user = find_user(uid, self.stage.user_fields, self.stage.case_insensitive_matching)
        if user is not None and not user.is_active:
            user = None
        self.ctx.context["pending_user_identifier"] = uid
        password_stage = self.stage.password_stage
        if password_stage is not None:
            password = data.get("password")
            if not isinstance(password, str) or not password:
                return self.invalid("password", "This field is required.", "required")
            limited = rate_limit_message(self.ctx, uid)
            if limited:
                return self.invalid("non_field_errors", limited, "throttled")
            method = verify_password(self.ctx, user, password, password_stage.backends)
            if method is None:
                record_failure(self.ctx, uid, self.stage.name)
                return self.invalid("non_field_errors", FAILED)
            record_success(self.ctx, uid, method)
        elif user is None and not self.stage.pretend_user_exists:
            return self.invalid("non_field_errors", FAILED)
        self.ctx.set_pending_user(user)
        if data.get("remember_me") and self.stage.enable_remember_me:
            self.ctx.context["remember_me"] = True
        return Passed()
