from django.apps import AppConfig


class AuthentikProvidersRadiusConfig(AppConfig):
    name = "core.providers.radius"
    label = "authentik_providers_radius"
    default_auto_field = "django.db.models.BigAutoField"
