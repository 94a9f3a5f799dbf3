"""Applied blueprints (authentik_blueprints): what was applied, from where, with which content hash."""

from uuid import uuid4

from django.db import models


class BlueprintInstance(models.Model):
    instance_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    path = models.TextField(blank=True, default="")
    context = models.JSONField(default=dict, blank=True)
    last_applied = models.DateTimeField(auto_now=True)
    last_applied_hash = models.TextField(blank=True, default="")
    status = models.TextField(default="unknown", help_text="successful, warning, error, orphaned, unknown")
    enabled = models.BooleanField(default=True)
    managed_models = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "Blueprint Instance"  # authentik's names
        verbose_name_plural = "Blueprint Instances"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
