"""System-wide settings changed at run time (authentik's System settings; one row)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.hosts import BASE_URL_VARIABLE, normalize_base_url

SINGLETON_PK = 1


def validate_base_url(value: str) -> None:
    try:
        normalize_base_url(value)
    except ValueError as exc:
        raise ValidationError(f"{value!r}: {exc}") from None


class SystemSettings(models.Model):
    base_url = models.TextField(
        blank=True, default="", validators=[validate_base_url], verbose_name="Base URL",
        help_text=("The URL people reach Gatehouse at, scheme and host only, e.g. https://auth.example.com. "
                   "Links in mail are built from it, and Gatehouse answers its host name. Empty: "
                   f"{BASE_URL_VARIABLE} is used; without either, no mail with a link is sent."))

    class Meta:
        verbose_name = "Settings"
        verbose_name_plural = "Settings"

    def __str__(self) -> str:
        return "Settings"

    def save(self, *args, **kwargs):
        self.pk = SINGLETON_PK
        self.base_url = normalize_base_url(self.base_url)  # validated by the form or the caller first
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> SystemSettings:
        """The settings row, or the defaults when none was saved yet (reading never writes)."""
        return cls.objects.filter(pk=SINGLETON_PK).first() or cls(pk=SINGLETON_PK)


class ConfigStamp(models.Model):
    """One row whose ``stamp`` (random) is replaced in the same transaction as every change of the configuration that
    per-process caches are derived from (core/system/stamp.py): a cache entry made under another stamp is stale."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    stamp = models.CharField(max_length=32)

    class Meta:
        verbose_name = "Configuration stamp"

    def __str__(self) -> str:
        return self.stamp
