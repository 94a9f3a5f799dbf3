"""Device authorization grant (RFC 8628): the endpoint (§3.1-3.2) and the token grant (§3.4-3.5).

device_code and user_code are stored as sha256 only. A user approves by typing the user_code at
``/device`` while logged in (core/oidc/views/device.py). The device_code yields tokens once.
"""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint as _Endpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _Grant
from django.utils import timezone

from core.accounts.models import hash_key
from core.oidc.grants.base import TokenIssuer
from core.oidc.models import DeviceStatus, DeviceToken

EXPIRES_IN = 600
INTERVAL = 5


def normalize_user_code(value: str) -> str:
    """RFC 8628 §6.1: compare case-insensitively, ignoring dashes and spaces."""
    return "".join(c for c in (value or "").upper() if c.isalnum())


class DeviceAuthorizationEndpoint(_Endpoint):
    EXPIRES_IN = EXPIRES_IN
    INTERVAL = INTERVAL
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def get_verification_uri(self):
        return f"{self.server.base_url}/device"

    def save_device_credential(self, client_id, scope, data):
        client = self.server.query_client(client_id)
        allowed = client.get_allowed_scope(scope)  # the provider's overlap (narrow_scope)
        DeviceToken.objects.create(
            provider=client.provider, device_code_hash=hash_key(data["device_code"]),
            user_code_hash=hash_key(normalize_user_code(data["user_code"])), scope=allowed,
            expires=timezone.now() + timedelta(seconds=self.EXPIRES_IN))


class _Credential:
    def __init__(self, row: DeviceToken):
        self.row = row

    def get_client_id(self):
        return self.row.provider.client_id

    def get_scope(self):
        return self.row.scope

    def get_user_code(self):
        return self.row.pk

    def is_expired(self):
        return self.row.expires <= timezone.now()


class DeviceCodeGrant(TokenIssuer, _Grant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_device_credential(self, device_code):
        row = DeviceToken.objects.select_related("provider", "user", "session").filter(
            device_code_hash=hash_key(device_code or "")).first()
        return _Credential(row) if row is not None and row.status != DeviceStatus.USED else None

    def query_user_grant(self, user_code):
        row = DeviceToken.objects.select_related("user").get(pk=user_code)
        if row.status == DeviceStatus.APPROVED and row.user is not None and row.user.is_active:
            return row.user, True
        if row.status == DeviceStatus.DENIED:
            return row.user, False
        return None

    def should_slow_down(self, credential):
        now = timezone.now()
        last = credential.row.last_poll
        DeviceToken.objects.filter(pk=credential.row.pk).update(last_poll=now)
        return last is not None and (now - last).total_seconds() < INTERVAL

    def create_token_response(self):
        row = self.request.credential.row
        if DeviceToken.objects.filter(pk=row.pk, status=DeviceStatus.APPROVED).update(
                status=DeviceStatus.USED) != 1:
            raise InvalidGrantError("the device code was already used")
        return super().create_token_response()

    def token_context(self) -> dict:
        row = self.request.credential.row
        return {"session": row.session, "auth_time": row.auth_time}
