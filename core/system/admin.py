from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from core.hosts import BASE_URL_VARIABLE
from core.system import base_url
from core.system.models import SINGLETON_PK, SystemSettings


@admin.register(SystemSettings)
class SystemSettingsAdmin(admin.ModelAdmin):
    """One row: the list opens it; it can be changed, not added twice or deleted."""

    fields = ("base_url", "base_url_in_use")
    readonly_fields = ("base_url_in_use",)

    @admin.display(description="Base URL in use")
    def base_url_in_use(self, obj) -> str:
        value, source = base_url.current_with_source()
        if not value:
            return f"none: set the Base URL above or {BASE_URL_VARIABLE}; until then no mail with a link is sent"
        return f"{value} (from {source})"

    def changelist_view(self, request, extra_context=None):
        if not SystemSettings.objects.filter(pk=SINGLETON_PK).exists():
            SystemSettings.load().save()  # the defaults, so that there is one row to change
        return HttpResponseRedirect(reverse("admin:authentik_admin_systemsettings_change", args=[SINGLETON_PK]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
