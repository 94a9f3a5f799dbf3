"""Email stage (``ak-stage-email``): mail a link that resumes this flow once (password recovery).

The stage only queues the mail (core/mail/outbox.py): one row per request whether or not the name
exists, the same answer either way, and re-send limits per name and per client address. The sender
(``ak worker``, or ``ak server``'s own background sender) saves the plan in a FlowToken (only sha256 of the
key is stored; single use; expires after ``token_expiry``) and mails
``<base URL>/if/flow/<slug>/?flow_token=<key>``, which restores it, possibly in another browser; the stage
then passes. The link is built on the configured base URL only, never on the request's Host (issue 8
item 3); without one nothing is queued and everybody is told the server cannot send links yet.
"""

from __future__ import annotations

import logging

from core.flows.stages.base import Passed, StageView
from core.mail.outbox import request_mail
from core.system import base_url

RESTORED_KEY = "is_restored"
SENT_KEY = "email_sent"
CANNOT_SEND = ("This server cannot send email links yet: its administrator has not set the address people "
               "reach it at. Please tell them.")
LOGGER = logging.getLogger("gatehouse.flows")


class EmailStageView(StageView):
    component = "ak-stage-email"

    def get(self):
        if self.ctx.context.pop(RESTORED_KEY, None):
            return Passed()
        if not self.ctx.context.get(SENT_KEY):
            return self._send()
        return self.show()

    def post(self, data: dict):
        return self._send()  # "send again"

    def _send(self):
        """Queue the mail. Never loads the user: the work must not depend on whether the name exists."""
        self.ctx.context[SENT_KEY] = True
        if not base_url.current():
            LOGGER.warning(f"email stage {self.stage.name!r} sent nothing: {base_url.NoBaseURL('its links')}",
                           extra={"flow": self.ctx.flow.slug})
            return self.invalid("non_field_errors", CANNOT_SEND, "no_base_url")
        plan = self.ctx.plan.to_json()
        plan["context"] = {k: v for k, v in plan["context"].items() if k != SENT_KEY} | {RESTORED_KEY: True}
        limited = request_mail(flow=self.ctx.flow, stage=self.stage, plan=plan,
                               user_pk=self.ctx.context.get("pending_user"),
                               typed=self.ctx.context.get("pending_user_identifier"),
                               client_ip=self.ctx.request.client_ip)
        if limited:
            return self.invalid("non_field_errors", limited, "throttled")
        return self.show()
