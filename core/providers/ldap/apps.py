from django.apps import AppConfig


class AuthentikProvidersLdapConfig(AppConfig):
    name = "core.providers.ldap"
    label = "authentik_providers_ldap"
    verbose_name = "LDAP Provider"
    default_auto_field = "django.db.models.BigAutoField"
