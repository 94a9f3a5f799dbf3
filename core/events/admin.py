"""Events -> Logs in the admin: the audit log, read-only, with authentik's filters (action, user, client IP,
date) and a search over the action, app, address and user name."""

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from core.events.models import Event

FILTER_CHOICES = 20  # the most frequent values offered; any other works from the URL (?user=pat)


class FrequentValueFilter(admin.SimpleListFilter):
    """The FILTER_CHOICES values seen most often; the filter applies to whatever value the URL names."""

    field = ""

    def lookups(self, request, model_admin):
        rows = (Event.objects.exclude(**{f"{self.field}__isnull": True}).order_by().values(self.field)
                .annotate(n=Count("pk")).order_by("-n")[:FILTER_CHOICES])
        return [(str(r[self.field]), str(r[self.field])) for r in rows if r[self.field] not in ("", None)]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class UserFilter(FrequentValueFilter):
    title = "user"
    parameter_name = "user"
    field = "user__username"


class ClientIPFilter(FrequentValueFilter):
    title = "client IP"
    parameter_name = "client_ip"
    field = "client_ip"


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created", "action", "app", "client_ip", "username")
    list_filter = ("action", UserFilter, ClientIPFilter, "app")
    search_fields = ("action", "app", "client_ip", "user__username")
    date_hierarchy = "created"
    fields = ("created", "action", "username", "client_ip", "app", "context_json", "expires")
    readonly_fields = fields

    @admin.display(description="User")
    def username(self, obj):
        return (obj.user or {}).get("username", "")

    @admin.display(description="Context")
    def context_json(self, obj):
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.context, indent=2, sort_keys=True, default=str))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # an audit log: events expire (``expires``), nobody deletes them by hand
