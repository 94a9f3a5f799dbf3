"""LDAP provider configuration (authentik_providers_ldap); the protocol lives in outpost/ldap/."""

from django.db import models

from core.accounts.models import Provider


class LDAPProvider(Provider):
    base_dn = models.TextField(default="DC=ldap,DC=goauthentik,DC=io", verbose_name="Base DN")
    certificate = models.ForeignKey("authentik_crypto.CertificateKeyPair", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    tls_server_name = models.TextField(blank=True, default="", verbose_name="TLS server name")
    uid_start_number = models.IntegerField(default=2000, verbose_name="UID start number")
    gid_start_number = models.IntegerField(default=4000, verbose_name="GID start number")
    search_mode = models.TextField(default="direct", help_text="direct or cached")
    bind_mode = models.TextField(default="direct", help_text="direct or cached")
    mfa_support = models.BooleanField(default=True, verbose_name="Code-based MFA support")
    search_full_directory = models.BooleanField(default=False)
    require_tls = models.BooleanField(default=False, help_text="refuse a bind before StartTLS or on plain LDAP",
                                      verbose_name="Require TLS")

    class Meta:
        verbose_name = "LDAP Provider"
        verbose_name_plural = "LDAP Providers"
