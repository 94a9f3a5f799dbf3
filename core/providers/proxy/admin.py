from django.contrib import admin

from core.api.admin_checks import APIChecked
from core.providers.proxy.api import ProxyProviderSerializer
from core.providers.proxy.models import ProxyProvider


@admin.register(ProxyProvider)
class ProxyProviderAdmin(APIChecked, admin.ModelAdmin):
    api_serializer = ProxyProviderSerializer
    list_display = ("name", "external_host", "mode")
    search_fields = ("name",)
