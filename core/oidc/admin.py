from django.contrib import admin

from core.api.admin_checks import APIChecked
from core.oidc.admin_forms import RedirectURIsField
from core.oidc.api import OAuth2ProviderSerializer
from core.oidc.keys import default_signing_key
from core.oidc.models import OAuth2Provider, ScopeMapping


@admin.register(OAuth2Provider)
class OAuth2ProviderAdmin(APIChecked, admin.ModelAdmin):
    """Redirect URIs one per line (core/oidc/admin_forms.py); the Signing Key list has authentik's default
    certificate (made on first need, core/oidc/keys.py) and a new provider has it preselected, as in authentik."""

    api_serializer = OAuth2ProviderSerializer
    list_display = ("name", "client_id", "client_type")
    search_fields = ("name",)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "redirect_uris":
            return RedirectURIsField()
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "signing_key":
            default_signing_key("rsa")  # listed from the first form on; one query once it exists
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        return {"signing_key": default_signing_key("rsa").pk, **super().get_changeform_initial_data(request)}


@admin.register(ScopeMapping)
class ScopeMappingAdmin(admin.ModelAdmin):
    list_display = ("name", "scope_name", "managed")
