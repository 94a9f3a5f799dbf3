"""TOTP setup (``ak-stage-authenticator-totp``): show an otpauth:// URL, confirm it with a code."""

from __future__ import annotations

import pyotp

from core.flows.models import TOTPDevice
from core.flows.stages.base import Denied, Passed, StageView
from core.flows.stages.devices import totp_step

KEY = "totp_setup_key"
ISSUER = "Gatehouse"


def config_url(key: str, digits: int, username: str) -> str:
    """The otpauth:// URL an authenticator app reads (from its QR code) for ``key``."""
    return pyotp.TOTP(key, digits=digits).provisioning_uri(name=username, issuer_name=ISSUER)


def new_key() -> str:
    return pyotp.random_base32()


class AuthenticatorTOTPStageView(StageView):
    component = "ak-stage-authenticator-totp"
    with_user_info = True

    def _user(self):
        return self.ctx.pending_user or self.ctx.request.user

    def _key(self) -> str:
        key = self.ctx.context.get(KEY)
        if not key:
            key = self.ctx.context[KEY] = new_key()
        return key

    def challenge_fields(self) -> dict:
        user = self._user()
        return {"config_url": config_url(self._key(), self.stage.digits, user.username if user else "")}

    def get(self):
        if self._user() is None:
            return Denied("No pending user.")
        return self.show()

    def post(self, data: dict):
        user = self._user()
        if user is None:
            return Denied("No pending user.")
        code = str(data.get("code", "")).strip().replace(" ", "")
        step = totp_step(self._key(), self.stage.digits, 30, code)
        if step is None:
            return self.invalid("code", "Code does not match")
        TOTPDevice.objects.create(user=user, name=self.stage.friendly_name or "TOTP device",
                                  key=self.ctx.context.pop(KEY), digits=self.stage.digits, confirmed=True,
                                  last_t=step)
        return Passed()
