from django.apps import AppConfig


class AuthentikProvidersProxyConfig(AppConfig):
    name = "core.providers.proxy"
    label = "authentik_providers_proxy"
    default_auto_field = "django.db.models.BigAutoField"
