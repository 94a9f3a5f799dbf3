from django.contrib import admin

from core.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created", "action", "app", "client_ip", "username")
    list_filter = ("action", "app")
    search_fields = ("action", "app", "client_ip")
    date_hierarchy = "created"

    def username(self, obj):
        return (obj.user or {}).get("username", "")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
