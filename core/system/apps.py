from django.apps import AppConfig


class AuthentikAdminConfig(AppConfig):
    """System settings (authentik keeps its ``SystemSettings`` in the ``authentik_admin`` app)."""

    name = "core.system"
    label = "authentik_admin"
    verbose_name = "System"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core.system import base_url, stamp

        base_url.connect()
        stamp.connect()
