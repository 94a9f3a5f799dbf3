"""User logout: the view deletes the AuthenticatedSession row (outposts get SESSION_END) and flushes."""

from __future__ import annotations

from core.flows.stages.base import Passed, StageView


class UserLogoutStageView(StageView):
    component = "xak-user-logout"

    def get(self):
        self.ctx.effects.logout = True
        return Passed()

    post = lambda self, data: self.get()  # noqa: E731
