from django.apps import AppConfig


class AuthentikBlueprintsConfig(AppConfig):
    name = "core.blueprints"
    label = "authentik_blueprints"
    default_auto_field = "django.db.models.BigAutoField"
