"""User login (``ak-stage-user-login``): the executor's caller logs the pending user in.

The view calls Django's ``login()`` (which rotates the session key, THREATS 7) and writes the
AuthenticatedSession row. The challenge (``remember_me``) is shown only when the stage has a
remember-me offset; otherwise the stage passes on GET, as in authentik.
"""

from __future__ import annotations

from django.conf import settings

from core.durations import seconds
from core.flows.stages.base import Denied, LoginEffect, Passed, StageView


def _seconds(text: str) -> int:
    try:
        return int(seconds(text or "seconds=0"))
    except ValueError:
        return 0


class UserLoginStageView(StageView):
    component = "ak-stage-user-login"
    with_user_info = True

    def _offset(self) -> int:
        return _seconds(self.stage.remember_me_offset)

    def get(self):
        if self._offset() > 0 and not self.ctx.context.get("remember_me"):
            return self.show()
        return self._login(bool(self.ctx.context.get("remember_me")))

    def post(self, data: dict):
        remember = data.get("remember_me")
        return self._login(remember is True or remember in ("true", "on", "1"))

    def _login(self, remember_me: bool):
        user = self.ctx.pending_user
        if user is None:
            return Denied("No Pending user to login.")
        if not user.is_active:
            return Denied("User is inactive.")
        expiry = _seconds(self.stage.session_duration) or settings.CONFIG.session_lifetime
        if remember_me:
            expiry += self._offset()
        method = self.ctx.context.get("auth_method", "password")
        self.ctx.effects.login = LoginEffect(user_pk=user.pk, expiry_seconds=expiry, auth_method=method,
                                             remember_me=remember_me,
                                             terminate_other_sessions=self.stage.terminate_other_sessions)
        return Passed()
