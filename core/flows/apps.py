from django.apps import AppConfig


class AuthentikFlowsConfig(AppConfig):
    name = "core.flows"
    label = "authentik_flows"
    verbose_name = "Flows and Stages"
    default_auto_field = "django.db.models.BigAutoField"
