from django.apps import AppConfig


class AuthentikCoreConfig(AppConfig):
    name = "core.accounts"
    label = "authentik_core"
    verbose_name = "Core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete

        from core.accounts import sessions, signals
        from core.accounts.models import AuthenticatedSession

        signals.connect()
        post_delete.connect(sessions.end_django_session, sender=AuthenticatedSession,
                            dispatch_uid="accounts-session-store-delete")
