"""Authenticator validation (``ak-stage-authenticator-validate``): TOTP, static codes, WebAuthn.

The answer carries ``selected_challenge`` (one of ``device_challenges``) and ``code`` (TOTP or
static) or ``webauthn`` (an assertion, verified with the ``webauthn`` package). Without a
selected challenge, a code is tried against the user's TOTP and static devices.
No device of an allowed class: ``not_configured_action`` skip (pass), deny, or configure (the
first configuration stage is injected into the plan).
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

import webauthn
from django.utils import timezone
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from core.events.record import record
from core.flows.models import WebAuthnDevice
from core.flows.planner import INJECTED_PREFIX, MFA_VERIFIED_KEY
from core.flows.stages.base import Denied, Passed, StageView
from core.flows.stages.devices import user_devices, verify_static, verify_totp
from core.policies import reputation

INVALID = "Invalid Token"
CHALLENGE_KEY = "webauthn_challenge"


def rp_id(host: str) -> str:
    """The WebAuthn relying party id: the request's host name without the port."""
    return urlsplit(f"//{host}").hostname or ""


class AuthenticatorValidateStageView(StageView):
    component = "ak-stage-authenticator-validate"
    with_user_info = True

    def _devices(self):
        allowed = set(self.stage.device_classes or ["static", "totp", "webauthn"])
        return [d for d in user_devices(self.ctx.pending_user) if d.device_class in allowed]

    def _webauthn_options(self, devices) -> dict:
        challenge = secrets.token_bytes(32)
        self.ctx.context[CHALLENGE_KEY] = bytes_to_base64url(challenge)
        options = webauthn.generate_authentication_options(
            rp_id=rp_id(self.ctx.request.host), challenge=challenge,
            allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(d.obj.credential_id))
                               for d in devices],
            user_verification=UserVerificationRequirement(self.stage.webauthn_user_verification or "preferred"))
        return json.loads(webauthn.options_to_json(options))

    def challenge_fields(self) -> dict:
        devices = self._devices()
        challenges, webauthn_devices = [], []
        for d in devices:
            if d.device_class == "webauthn":
                webauthn_devices.append(d)
                continue
            if any(c["device_class"] == d.device_class for c in challenges):
                continue
            challenges.append({"device_class": d.device_class, "device_uid": str(d.pk), "challenge": {},
                               "last_used": d.last_used.isoformat() if d.last_used else None})
        if webauthn_devices:
            last = max((d.last_used for d in webauthn_devices if d.last_used), default=None)
            challenges.append({"device_class": "webauthn", "device_uid": "-1",
                               "challenge": self._webauthn_options(webauthn_devices),
                               "last_used": last.isoformat() if last else None})
        return {"device_challenges": challenges, "configuration_stages": []}

    def get(self):
        if self._devices():
            return self.show()
        action = self.stage.not_configured_action
        if action == "deny":
            return Denied("No (allowed) MFA authenticator configured.")
        if action == "configure":
            configure = list(self.stage.configuration_stages.all()[:1])
            if configure:
                self.ctx.plan.entries.insert(1, f"{INJECTED_PREFIX}{configure[0].pk}")
        return Passed()

    def _fail(self, field: str):
        identifier = self.ctx.identifier()
        canonical = reputation.record_failure(identifier, self.ctx.request.client_ip, peer=self.ctx.request.client_peer)
        record("login_failed", client_ip=self.ctx.request.client_ip, username=identifier, username_canonical=canonical,
               stage=self.stage.name, flow=self.ctx.flow.slug, reason="invalid MFA code")
        return self.invalid(field, INVALID)

    def post(self, data: dict):
        devices = self._devices()
        if not devices:
            return self.get()
        identifier = self.ctx.identifier()
        wait = reputation.start_attempt(identifier, self.ctx.request.client_ip, peer=self.ctx.request.client_peer)
        if wait:
            return self.invalid("code", reputation.limited_message(wait), "throttled")
        selected = data.get("selected_challenge") if isinstance(data.get("selected_challenge"), dict) else {}
        wanted = selected.get("device_class")
        if data.get("webauthn"):
            return self._webauthn(data["webauthn"], [d for d in devices if d.device_class == "webauthn"])
        code = data.get("code")
        if not isinstance(code, str) or not code.strip():
            reputation.release(identifier, self.ctx.request.client_ip, peer=self.ctx.request.client_peer)
            return self.invalid("code", "This field is required.", "required")
        code = code.strip().replace(" ", "")
        for d in devices:
            if wanted and d.device_class != wanted:
                continue
            if (d.device_class == "totp" and verify_totp(d.obj, code)) or (
                    d.device_class == "static" and verify_static(d.obj, code)):
                return self._ok(d.device_class)
        return self._fail("code")

    def _webauthn(self, assertion, devices):
        expected = self.ctx.context.pop(CHALLENGE_KEY, None)
        try:
            cred = assertion if isinstance(assertion, dict) else json.loads(assertion)
            device = WebAuthnDevice.objects.filter(credential_id=cred.get("id") or cred.get("rawId"),
                                                   pk__in=[d.pk for d in devices]).first()
            if expected is None or device is None:
                return self._fail("webauthn")
            verified = webauthn.verify_authentication_response(
                credential=cred, expected_challenge=base64url_to_bytes(expected),
                expected_rp_id=rp_id(self.ctx.request.host), expected_origin=self.ctx.request.base_url,
                credential_public_key=base64url_to_bytes(device.public_key),
                credential_current_sign_count=device.sign_count,
                require_user_verification=self.stage.webauthn_user_verification == "required")
        except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
            return self._fail("webauthn")
        WebAuthnDevice.objects.filter(pk=device.pk).update(sign_count=verified.new_sign_count,
                                                           last_used=timezone.now())
        return self._ok("webauthn")

    def _ok(self, device_class: str):
        reputation.record_success(self.ctx.identifier(), self.ctx.request.client_ip, peer=self.ctx.request.client_peer)
        self.ctx.context["auth_method"] = "auth_mfa"
        self.ctx.context["auth_method_args"] = {"mfa_devices": [device_class]}
        self.ctx.context[MFA_VERIFIED_KEY] = self.ctx.pending_user.pk
        return Passed()
