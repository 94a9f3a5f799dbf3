from django.apps import AppConfig


class AuthentikProvidersLdapConfig(AppConfig):
    name = "core.providers.ldap"
    label = "authentik_providers_ldap"
    default_auto_field = "django.db.models.BigAutoField"
