from django.contrib import admin

from core.api.admin_checks import APIChecked
from core.providers.ldap.api import LDAPProviderSerializer
from core.providers.ldap.models import LDAPProvider


@admin.register(LDAPProvider)
class LDAPProviderAdmin(APIChecked, admin.ModelAdmin):
    api_serializer = LDAPProviderSerializer
    list_display = ("name", "base_dn")
    search_fields = ("name",)
