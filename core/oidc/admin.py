from django.contrib import admin

from core.api.admin_checks import APIChecked
from core.oidc.api import OAuth2ProviderSerializer
from core.oidc.models import OAuth2Provider, ScopeMapping


@admin.register(OAuth2Provider)
class OAuth2ProviderAdmin(APIChecked, admin.ModelAdmin):
    api_serializer = OAuth2ProviderSerializer
    list_display = ("name", "client_id", "client_type")
    search_fields = ("name",)


@admin.register(ScopeMapping)
class ScopeMappingAdmin(admin.ModelAdmin):
    list_display = ("name", "scope_name", "managed")
