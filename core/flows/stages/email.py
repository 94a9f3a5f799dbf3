"""Email stage (``ak-stage-email``): mail a link that resumes this flow once (password recovery).

The plan is saved in a FlowToken (only sha256 of the key is stored; single use; expires after
``token_expiry``); ``/if/flow/<slug>/?flow_token=<key>`` restores it, possibly in another browser,
and the stage then passes. An unknown user gets the same "check your email" answer and no mail
(no user enumeration).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from core.accounts.models import hash_key
from core.durations import parse
from core.flows.models import FlowToken
from core.flows.stages.base import Passed, StageView

RESTORED_KEY = "is_restored"


class EmailStageView(StageView):
    component = "ak-stage-email"

    def get(self):
        if self.ctx.context.pop(RESTORED_KEY, None):
            return Passed()
        if not self.ctx.context.get("email_sent"):
            self._send()
        return self.show()

    def post(self, data: dict):
        self._send()  # "send again"
        return self.show()

    def _send(self) -> None:
        self.ctx.context["email_sent"] = True
        user = self.ctx.pending_user
        if user is None or not user.email or not user.is_active:
            return
        key = secrets.token_urlsafe(32)
        plan = self.ctx.plan.to_json()
        plan["context"] = {k: v for k, v in plan["context"].items() if k != "email_sent"}
        plan["context"][RESTORED_KEY] = True
        FlowToken.objects.create(key_hash=hash_key(key), flow=self.ctx.flow, plan=plan, user=user,
                                 expires=timezone.now() + parse(self.stage.token_expiry or "minutes=30"))
        link = f"{self.ctx.request.base_url}/if/flow/{self.ctx.flow.slug}/?flow_token={key}"
        body = (f"Hello {user.name or user.username},\n\nuse this link to continue (it works once):\n{link}\n\n"
                "If you did not ask for this, ignore this message.")
        send_mail(self.stage.subject or "Gatehouse", body, settings.DEFAULT_FROM_EMAIL, [user.email])
