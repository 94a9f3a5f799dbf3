"""Static (recovery) codes setup (``ak-stage-authenticator-static``): show ``codes``, save on submit."""

from __future__ import annotations

import secrets
import string

from django.db import transaction

from core.flows.models import StaticDevice, StaticToken
from core.flows.stages.base import Denied, Passed, StageView

KEY = "static_setup_codes"
ALPHABET = string.ascii_lowercase + string.digits


def new_codes(count: int, length: int) -> list[str]:
    length = max(6, length)
    return ["".join(secrets.choice(ALPHABET) for _ in range(length)) for _ in range(count)]


def save_codes(user, name: str, codes: list[str]) -> StaticDevice:
    """A confirmed static device holding ``codes`` (each works once)."""
    with transaction.atomic():
        device = StaticDevice.objects.create(user=user, name=name, confirmed=True)
        StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return device


class AuthenticatorStaticStageView(StageView):
    component = "ak-stage-authenticator-static"
    with_user_info = True

    def _user(self):
        return self.ctx.pending_user or self.ctx.request.user

    def _codes(self) -> list[str]:
        codes = self.ctx.context.get(KEY)
        if not codes:
            codes = self.ctx.context[KEY] = new_codes(self.stage.token_count, self.stage.token_length)
        return codes

    def challenge_fields(self) -> dict:
        return {"codes": self._codes()}

    def get(self):
        if self._user() is None:
            return Denied("No pending user.")
        return self.show()

    def post(self, data: dict):
        user = self._user()
        if user is None:
            return Denied("No pending user.")
        codes = self.ctx.context.pop(KEY, None) or self._codes()
        save_codes(user, self.stage.friendly_name or "Static tokens", codes)
        return Passed()
