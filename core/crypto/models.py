"""Certificate/key pairs (authentik_crypto): TLS certificates and OIDC signing keys."""

from uuid import uuid4

from django.db import models


class CertificateKeyPair(models.Model):
    kp_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    certificate_data = models.TextField(help_text="PEM-encoded certificate")
    key_data = models.TextField(blank=True, default="", help_text="PEM-encoded private key")
    managed = models.TextField(null=True, blank=True, unique=True, default=None)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
