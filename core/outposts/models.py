"""Outposts (authentik_outposts): each has a service account and a managed API token."""

from __future__ import annotations

from uuid import uuid4

from django.db import models

EMBEDDED_OUTPOST_MANAGED = "goauthentik.io/outposts/embedded"


class OutpostType(models.TextChoices):
    PROXY = "proxy", "Proxy"
    LDAP = "ldap", "LDAP"
    RADIUS = "radius", "RADIUS"


def default_outpost_config() -> dict:
    return {"log_level": "info", "authentik_host": "", "authentik_host_insecure": False,
            "authentik_host_browser": "", "refresh_interval": "minutes=5",
            "object_naming_template": "ak-outpost-%(name)s"}


class Outpost(models.Model):
    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    type = models.TextField(choices=OutpostType.choices, default=OutpostType.PROXY)
    providers = models.ManyToManyField("authentik_core.Provider", blank=True, related_name="outposts")
    config = models.JSONField(default=default_outpost_config, blank=True)
    managed = models.TextField(null=True, blank=True, unique=True, default=None)

    class Meta:
        verbose_name = "Outpost"
        verbose_name_plural = "Outposts"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def service_account_name(self) -> str:
        return f"ak-outpost-{self.uuid.hex}"

    @property
    def token_identifier(self) -> str:
        return f"ak-outpost-{self.uuid}-api"

    def serves(self, kind: str) -> bool:
        """This outpost runs the ``kind`` outpost: it is of that type, or it is the embedded outpost and a provider
        of that kind is bound to it (``ak server`` answers LDAP and RADIUS for those too)."""
        if self.type == kind:
            return True
        if self.managed != EMBEDDED_OUTPOST_MANAGED or kind not in (OutpostType.LDAP, OutpostType.RADIUS):
            return False
        return self.providers.filter(**{f"{kind}provider__isnull": False}).exists()


class OutpostChange(models.Model):
    """A message for outposts written by a process without Redis (core/outposts/hub.py): every ``ak server``
    polls new rows and relays them to its websockets. Rows are pruned after a few minutes."""

    id = models.BigAutoField(primary_key=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    outpost = models.UUIDField(null=True, blank=True, help_text="the target outpost; empty: every outpost")
    instruction = models.PositiveSmallIntegerField()
    args = models.JSONField(default=dict, blank=True)
    origin = models.CharField(max_length=32, help_text="the writing process (its own server skips the row)")

    class Meta:
        ordering = ["id"]
