from django.apps import AppConfig


class AuthentikBlueprintsConfig(AppConfig):
    name = "core.blueprints"
    label = "authentik_blueprints"
    verbose_name = "Blueprints"
    default_auto_field = "django.db.models.BigAutoField"
