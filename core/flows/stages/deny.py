"""Deny stage: always access denied, with the stage's message."""

from __future__ import annotations

from core.flows.stages.base import Denied, StageView


class DenyStageView(StageView):
    component = "ak-stage-access-denied"

    def get(self):
        return Denied(self.stage.deny_message or "Access denied.")

    def post(self, data: dict):
        return self.get()
