"""RADIUS provider configuration (authentik_providers_radius); the protocol lives in outpost/radius/."""

import secrets

from django.db import models

from core.accounts.models import PropertyMapping, Provider


def generate_shared_secret() -> str:
    return secrets.token_urlsafe(24)


class RadiusProvider(Provider):
    client_networks = models.TextField(default="0.0.0.0/0, ::/0", help_text="comma-separated CIDRs")
    shared_secret = models.TextField(default=generate_shared_secret)
    mfa_support = models.BooleanField(default=True, verbose_name="Code-based MFA support")
    certificate = models.ForeignKey("authentik_crypto.CertificateKeyPair", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    require_message_authenticator = models.BooleanField(
        default=True, help_text="BlastRADIUS (CVE-2024-3596): drop Access-Requests without a valid one")
    bind_mode = models.TextField(
        default="direct", choices=[("direct", "Direct"), ("cached", "Cached")],
        help_text="direct: every PAP request goes to the core; cached: a PAP success is remembered in the outpost for "
                  "5 minutes (emptied on every user, group, policy or provider change)")

    class Meta:
        verbose_name = "RADIUS Provider"
        verbose_name_plural = "RADIUS Providers"


class RadiusProviderPropertyMapping(PropertyMapping):
    """authentik's RADIUS property mapping: an expression that sets reply attributes on ``packet`` for an
    Access-Accept (core/providers/radius/mappings.py). Attached through ``RadiusProvider.property_mappings``."""

    class Meta:
        verbose_name = "RADIUS Provider Property Mapping"
        verbose_name_plural = "RADIUS Provider Property Mappings"
