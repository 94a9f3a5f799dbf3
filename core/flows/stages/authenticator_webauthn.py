"""WebAuthn setup (``ak-stage-authenticator-webauthn``): ``registration`` options, verify ``response``."""

from __future__ import annotations

import json
import secrets

import webauthn
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from core.flows.models import WebAuthnDevice
from core.flows.stages.authenticator_validate import rp_id
from core.flows.stages.base import Denied, Passed, StageView

KEY = "webauthn_registration_challenge"


class AuthenticatorWebAuthnStageView(StageView):
    component = "ak-stage-authenticator-webauthn"
    with_user_info = True

    def _user(self):
        return self.ctx.pending_user or self.ctx.request.user

    def challenge_fields(self) -> dict:
        user = self._user()
        challenge = secrets.token_bytes(32)
        self.ctx.context[KEY] = bytes_to_base64url(challenge)
        attachment = self.stage.authenticator_attachment
        options = webauthn.generate_registration_options(
            rp_id=rp_id(self.ctx.request.host), rp_name="Gatehouse", user_id=user.uuid.bytes,
            user_name=user.username, user_display_name=user.name or user.username, challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement(self.stage.resident_key_requirement or "preferred"),
                user_verification=UserVerificationRequirement(self.stage.user_verification or "preferred"),
                authenticator_attachment=AuthenticatorAttachment(attachment) if attachment else None),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(d.credential_id))
                                 for d in WebAuthnDevice.objects.filter(user=user)])
        return {"registration": json.loads(webauthn.options_to_json(options))}

    def get(self):
        if self._user() is None:
            return Denied("No pending user.")
        return self.show()

    def post(self, data: dict):
        user = self._user()
        expected = self.ctx.context.pop(KEY, None)
        if user is None:
            return Denied("No pending user.")
        try:
            if expected is None:
                raise ValueError("no registration in progress")
            verified = webauthn.verify_registration_response(
                credential=data.get("response"), expected_challenge=base64url_to_bytes(expected),
                expected_rp_id=rp_id(self.ctx.request.host), expected_origin=self.ctx.request.base_url,
                require_user_verification=self.stage.user_verification == "required")
        except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError) as exc:
            return self.invalid("response", f"Invalid registration: {exc}")
        credential_id = bytes_to_base64url(verified.credential_id)
        if WebAuthnDevice.objects.filter(credential_id=credential_id).exists():
            return self.invalid("response", "This authenticator is already registered.")
        WebAuthnDevice.objects.create(user=user, name=self.stage.friendly_name or "Security key",
                                      credential_id=credential_id,
                                      public_key=bytes_to_base64url(verified.credential_public_key),
                                      sign_count=verified.sign_count, rp_id=rp_id(self.ctx.request.host))
        return Passed()
