from django.contrib import admin

from core.providers.radius.models import RadiusProvider, RadiusProviderPropertyMapping


@admin.register(RadiusProvider)
class RadiusProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "client_networks")
    search_fields = ("name",)


@admin.register(RadiusProviderPropertyMapping)
class RadiusProviderPropertyMappingAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)
