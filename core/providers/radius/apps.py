from django.apps import AppConfig


class AuthentikProvidersRadiusConfig(AppConfig):
    name = "core.providers.radius"
    label = "authentik_providers_radius"
    verbose_name = "RADIUS Provider"
    default_auto_field = "django.db.models.BigAutoField"
