from django.apps import AppConfig


class AuthentikPoliciesConfig(AppConfig):
    name = "core.policies"
    label = "authentik_policies"
    verbose_name = "Policies"
    default_auto_field = "django.db.models.BigAutoField"
    # This process's flow and policy engine metrics (core/metrics.py EngineMetrics), set by ready().
    metrics = None

    def ready(self):
        from core.metrics import EngineMetrics

        self.metrics = EngineMetrics()
