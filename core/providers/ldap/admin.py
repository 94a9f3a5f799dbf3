from django.contrib import admin

from core.providers.ldap.models import LDAPProvider


@admin.register(LDAPProvider)
class LDAPProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "base_dn")
    search_fields = ("name",)
