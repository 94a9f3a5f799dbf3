from django.contrib import admin

from core.oidc.models import OAuth2Provider, ScopeMapping


@admin.register(OAuth2Provider)
class OAuth2ProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "client_id", "client_type")
    search_fields = ("name",)


@admin.register(ScopeMapping)
class ScopeMappingAdmin(admin.ModelAdmin):
    list_display = ("name", "scope_name", "managed")
