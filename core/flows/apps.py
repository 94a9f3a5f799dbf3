from django.apps import AppConfig


class AuthentikFlowsConfig(AppConfig):
    name = "core.flows"
    label = "authentik_flows"
    default_auto_field = "django.db.models.BigAutoField"
