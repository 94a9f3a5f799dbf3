"""Proxy provider configuration (authentik_providers_proxy); the protocol lives in outpost/proxy/."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import models

from core.oidc.models import OAuth2Provider, generate_cookie_secret


class ProxyMode(models.TextChoices):
    PROXY = "proxy"
    FORWARD_SINGLE = "forward_single"
    FORWARD_DOMAIN = "forward_domain"


CALLBACK_PATH = "/outpost.goauthentik.io/callback"
CALLBACK_MARKER = "X-authentik-auth-callback=true"


class ProxyProvider(OAuth2Provider):
    internal_host = models.TextField(blank=True, default="")
    external_host = models.TextField()
    internal_host_ssl_validation = models.BooleanField(default=True)
    certificate = models.ForeignKey("authentik_crypto.CertificateKeyPair", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    skip_path_regex = models.TextField(blank=True, default="", help_text="one regex per line, matched anchored")
    basic_auth_enabled = models.BooleanField(default=False)
    basic_auth_user_attribute = models.TextField(blank=True, default="")
    basic_auth_password_attribute = models.TextField(blank=True, default="")
    mode = models.TextField(choices=ProxyMode.choices, default=ProxyMode.PROXY)
    intercept_header_auth = models.BooleanField(default=True)
    cookie_domain = models.TextField(blank=True, default="")
    cookie_secret = models.TextField(default=generate_cookie_secret)

    def callback_uris(self) -> list[dict]:
        """The strict redirect URIs the outpost's OIDC login uses."""
        base = self.external_host.rstrip("/")
        return [
            {"matching_mode": "strict", "url": f"{base}{CALLBACK_PATH}?{CALLBACK_MARKER}"},
            {"matching_mode": "strict", "url": f"{base}?{CALLBACK_MARKER}"},
        ]

    @property
    def external_hostname(self) -> str:
        return (urlsplit(self.external_host).hostname or "").lower()

    def save(self, *args, **kwargs):
        # As authentik's set_oauth_defaults(): a confidential client whose redirect URIs are the callbacks.
        self.client_type = "confidential"
        self.redirect_uris = self.callback_uris()
        self.include_claims_in_id_token = True
        return super().save(*args, **kwargs)
