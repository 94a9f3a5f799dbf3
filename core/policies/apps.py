from django.apps import AppConfig


class AuthentikPoliciesConfig(AppConfig):
    name = "core.policies"
    label = "authentik_policies"
    default_auto_field = "django.db.models.BigAutoField"
