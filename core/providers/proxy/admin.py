from django.contrib import admin

from core.providers.proxy.models import ProxyProvider


@admin.register(ProxyProvider)
class ProxyProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "external_host", "mode")
    search_fields = ("name",)
