from django.contrib import admin

from core.api.admin_checks import APIChecked
from core.providers.radius.api import RadiusProviderSerializer
from core.providers.radius.models import RadiusProvider, RadiusProviderPropertyMapping


@admin.register(RadiusProvider)
class RadiusProviderAdmin(APIChecked, admin.ModelAdmin):
    api_serializer = RadiusProviderSerializer
    list_display = ("name", "client_networks")
    search_fields = ("name",)


@admin.register(RadiusProviderPropertyMapping)
class RadiusProviderPropertyMappingAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)
