from django.apps import AppConfig


class AuthentikCoreConfig(AppConfig):
    name = "core.accounts"
    label = "authentik_core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core.accounts import signals

        signals.connect()
