"""LDAP provider configuration (authentik_providers_ldap); the protocol lives in outpost/ldap/."""

from django.db import models

from core.accounts.models import Provider


class LDAPProvider(Provider):
    base_dn = models.TextField(default="DC=ldap,DC=goauthentik,DC=io")
    certificate = models.ForeignKey("authentik_crypto.CertificateKeyPair", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    tls_server_name = models.TextField(blank=True, default="")
    uid_start_number = models.IntegerField(default=2000)
    gid_start_number = models.IntegerField(default=4000)
    search_mode = models.TextField(default="direct", help_text="direct or cached")
    bind_mode = models.TextField(default="direct", help_text="direct or cached")
    mfa_support = models.BooleanField(default=True)
    search_full_directory = models.BooleanField(default=False)
    require_tls = models.BooleanField(default=False, help_text="refuse a bind before StartTLS or on plain LDAP")

    class Meta:
        verbose_name = "LDAP Provider"
        verbose_name_plural = "LDAP Providers"
