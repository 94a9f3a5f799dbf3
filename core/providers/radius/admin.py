from django.contrib import admin

from core.providers.radius.models import RadiusProvider


@admin.register(RadiusProvider)
class RadiusProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "client_networks")
    search_fields = ("name",)
