"""OAuth2 / OpenID Connect provider configuration (authentik_providers_oauth2).

The grant state (codes, tokens, device codes) is added by the OIDC provider itself; this module
holds the configuration the API, blueprints and the proxy provider build on.
"""

from __future__ import annotations

import secrets
import string

from django.db import models

from core.accounts.models import PropertyMapping, Provider


class ClientTypes(models.TextChoices):
    CONFIDENTIAL = "confidential"
    PUBLIC = "public"


class SubModes(models.TextChoices):  # the labels are authentik's
    HASHED_USER_ID = "hashed_user_id", "Based on the Hashed User ID"
    USER_ID = "user_id", "Based on user ID"
    USER_UUID = "user_uuid", "Based on user UUID"
    USER_USERNAME = "user_username", "Based on the username"
    USER_EMAIL = "user_email", "Based on the User's Email. This is recommended over the UPN method."
    USER_UPN = "user_upn", ("Based on the User's UPN, only works if user has a 'upn' attribute set. Use this method "
                            "only if you have different UPN and Mail domains.")


class IssuerMode(models.TextChoices):
    GLOBAL = "global", "Same identifier is used for all providers"
    PER_PROVIDER = "per_provider", "Each provider has a different issuer, based on the application slug."


def generate_client_id() -> str:
    return secrets.token_urlsafe(30)[:40]


def generate_client_secret() -> str:
    return secrets.token_urlsafe(96)[:128]


def generate_cookie_secret() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


class ScopeMapping(PropertyMapping):
    scope_name = models.TextField()
    description = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "Scope Mapping"
        verbose_name_plural = "Scope Mappings"


class OAuth2Provider(Provider):
    client_type = models.CharField(max_length=30, choices=ClientTypes.choices, default=ClientTypes.CONFIDENTIAL)
    client_id = models.CharField(max_length=255, unique=True, default=generate_client_id, verbose_name="Client ID")
    client_secret = models.CharField(max_length=255, blank=True, default=generate_client_secret,
                                     verbose_name="Client Secret")
    redirect_uris = models.JSONField(default=list, blank=True, verbose_name="Redirect URIs",
                                     help_text='[{"matching_mode": "strict"|"regex", "url": "..."}]')
    include_claims_in_id_token = models.BooleanField(default=True, verbose_name="Include claims in id_token")
    access_code_validity = models.TextField(default="minutes=1")
    access_token_validity = models.TextField(default="hours=1")
    refresh_token_validity = models.TextField(default="days=30")
    sub_mode = models.TextField(choices=SubModes.choices, default=SubModes.HASHED_USER_ID, verbose_name="Subject mode")
    issuer_mode = models.TextField(choices=IssuerMode.choices, default=IssuerMode.PER_PROVIDER)
    signing_key = models.ForeignKey("authentik_crypto.CertificateKeyPair", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "OAuth2/OpenID Provider"
        verbose_name_plural = "OAuth2/OpenID Providers"


# --- grant state (RFC 6749 §4.1 codes, §1.4/§1.5 tokens, RFC 8628 device codes) --------------------
# Every secret is stored as sha256(value) only; the value itself goes to the client once.


class GrantModel(models.Model):
    """What every grant row shares: the provider (client) it is bound to, the user, the login session
    it came from (deleting the session deletes the row: THREATS 12), the scopes and the expiry."""

    provider = models.ForeignKey(OAuth2Provider, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("authentik_core.User", on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey("authentik_core.AuthenticatedSession", null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    scope = models.TextField(blank=True, default="", help_text="space-separated granted scopes")
    auth_time = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def scopes(self) -> list[str]:
        return [s for s in self.scope.split() if s]

    # authlib's AuthorizationCodeMixin / TokenMixin
    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client) -> bool:
        return self.provider_id == client.provider.pk

    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.expires <= timezone.now()

    def is_revoked(self) -> bool:
        revoked = getattr(self, "revoked", getattr(self, "used", False))
        return bool(revoked) or not self.user.is_active


class AuthorizationCode(GrantModel):
    code_hash = models.CharField(max_length=64, unique=True)
    redirect_uri = models.TextField(blank=True, default="")
    nonce = models.TextField(blank=True, default="")
    code_challenge = models.TextField(blank=True, default="")
    code_challenge_method = models.CharField(max_length=10, blank=True, default="")
    used = models.BooleanField(default=False)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_nonce(self) -> str:
        return self.nonce

    def get_auth_time(self):
        return int(self.auth_time.timestamp()) if self.auth_time else None


class AccessToken(GrantModel):
    token_hash = models.CharField(max_length=64, unique=True)
    grant_type = models.CharField(max_length=100, default="authorization_code")
    claims = models.JSONField(default=dict, help_text="the id_token dict (introspection answers with it)")
    revoked = models.BooleanField(default=False)
    authorization_code = models.ForeignKey(AuthorizationCode, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="access_tokens")


class RefreshToken(GrantModel):
    token_hash = models.CharField(max_length=64, unique=True)
    nonce = models.TextField(blank=True, default="")
    revoked = models.BooleanField(default=False)
    authorization_code = models.ForeignKey(AuthorizationCode, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="refresh_tokens")


class DeviceStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    USED = "used"


class DeviceToken(models.Model):
    """RFC 8628 §3.2: a device_code (polled by the device) and a user_code (typed by the user)."""

    provider = models.ForeignKey(OAuth2Provider, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("authentik_core.User", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    session = models.ForeignKey("authentik_core.AuthenticatedSession", null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    device_code_hash = models.CharField(max_length=64, unique=True)
    user_code_hash = models.CharField(max_length=64, unique=True)
    scope = models.TextField(blank=True, default="")
    status = models.CharField(max_length=10, choices=DeviceStatus.choices, default=DeviceStatus.PENDING)
    auth_time = models.DateTimeField(null=True, blank=True)
    last_poll = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)

    @property
    def scopes(self) -> list[str]:
        return [s for s in self.scope.split() if s]
