from django.apps import AppConfig


class AuthentikEventsConfig(AppConfig):
    name = "core.events"
    label = "authentik_events"
    verbose_name = "Events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core.events import audit

        audit.connect()
