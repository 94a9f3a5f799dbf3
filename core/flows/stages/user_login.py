"""User login (``ak-stage-user-login``): the executor's caller logs the pending user in.

The view calls Django's ``login()`` (which rotates the session key, THREATS 7) and writes the
AuthenticatedSession row. The challenge (``remember_me``) is shown only when the stage has a
remember-me offset; otherwise the stage passes on GET, as in authentik.

A login that rests on a link -- a recovery flow, a plan resumed from a mailed ``flow_token``, a recovery key
(``planner.LINK_KEY``) -- needs the second factor of a user who has one, validated in this plan: a mailbox (or a
recovery key) alone must not be enough to take an MFA-protected account (issue 8 item 4; authentik logs in
there). The default recovery flow asks for it before the new password. A flow that does not ask ends without a
session, with a message to log in normally, and a warning that names the flow to fix. Users without a second
factor log in as before.
"""

from __future__ import annotations

import logging

from django.conf import settings

from core.durations import seconds
from core.flows.models import FlowDesignation
from core.flows.planner import LINK_KEY, MFA_VERIFIED_KEY
from core.flows.stages.base import Denied, LoginEffect, Passed, StageView
from core.flows.stages.devices import user_devices

LOGGER = logging.getLogger("gatehouse.flows")
SECOND_FACTOR_NEEDED = ("This link cannot sign you in, because your account has a second factor that was not "
                        "asked for. Log in with your password and your second factor.")


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

    def _by_link(self) -> bool:
        return self.ctx.flow.designation == FlowDesignation.RECOVERY or bool(self.ctx.context.get(LINK_KEY))

    def _login(self, remember_me: bool):
        user = self.ctx.pending_user
        if user is None:
            return Denied("No Pending user to login.")
        if not user.is_active:
            return Denied("User is inactive.")
        if self._by_link() and self.ctx.context.get(MFA_VERIFIED_KEY) != user.pk and user_devices(user):
            LOGGER.warning("flow %s: no login for %s, who has a second factor this flow did not ask for after a "
                           "link; add an authenticator validation stage before the stage %s", self.ctx.flow.slug,
                           user.username, self.stage.name)
            return Denied(SECOND_FACTOR_NEEDED)
        expiry = _seconds(self.stage.session_duration) or settings.CONFIG.session_lifetime
        if remember_me:
            expiry += self._offset()
        method = self.ctx.context.get("auth_method", "password")
        self.ctx.effects.login = LoginEffect(user_pk=user.pk, expiry_seconds=expiry, auth_method=method,
                                             remember_me=remember_me,
                                             terminate_other_sessions=self.stage.terminate_other_sessions)
        return Passed()
