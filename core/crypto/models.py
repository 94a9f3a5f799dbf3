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
        verbose_name = "Certificate-Key Pair"  # authentik's names
        verbose_name_plural = "Certificate-Key Pairs"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SecretKeyCheck(models.Model):
    """One row: a check value of the secret key this database was made with (core/crypto/key_check.py).

    Only an HMAC of a fixed text is kept, never the key: it tells whether a key matches, nothing else."""

    salt = models.CharField(max_length=64)
    value = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"secret key check of {self.created:%Y-%m-%d}"
