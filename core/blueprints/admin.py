"""Blueprints in the admin (authentik: Customisation -> Blueprints): the applied blueprint files, their status and
when they were last applied. They are written by ``ak`` and the start-up (core/blueprints/apply.py), not here:
the list is read-only (Gatehouse applies every blueprint file it finds; ``enabled`` is authentik's and kept)."""

from django.contrib import admin

from core.blueprints.models import BlueprintInstance


@admin.register(BlueprintInstance)
class BlueprintInstanceAdmin(admin.ModelAdmin):
    list_display = ("name", "path", "status", "enabled", "last_applied")
    list_filter = ("status", "enabled")
    search_fields = ("name", "path")
    fields = ("name", "path", "status", "enabled", "last_applied", "last_applied_hash", "context", "managed_models")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
