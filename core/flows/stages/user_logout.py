"""User logout: the view deletes the AuthenticatedSession row (outposts get SESSION_END) and flushes.

Signing out needs the person's confirmation (issue 8 item 11). Any site can link to or embed a flow
URL, and the browser sends the user's cookies with a GET, so a GET shows the question and only the
answer logs out: a POST, which the flow page sends with Django's CSRF token and the executor API
takes only as JSON (a cross-site form cannot send JSON without a CORS preflight). authentik signs out
on the GET; we differ on purpose, as OpenID Connect RP-Initiated Logout 1.0 §2 and §4 ask of an OP.
Nobody signed in: nothing to confirm; the (pre-login) session is flushed at once.
"""

from __future__ import annotations

from core.flows.stages.base import Passed, StageView


class UserLogoutStageView(StageView):
    component = "xak-user-logout"

    def get(self):
        user = self.ctx.request.user
        if user is None:
            return self.post({})
        return self.show(pending_user=user.username)

    def post(self, data):
        self.ctx.effects.logout = True
        return Passed()
