from django.apps import AppConfig
from django.db.models.signals import post_save


def _ensure_identity(sender, instance, raw=False, **kwargs):
    if raw:
        return
    from core.outposts.service import ensure_identity

    ensure_identity(instance)


class AuthentikOutpostsConfig(AppConfig):
    name = "core.outposts"
    label = "authentik_outposts"
    verbose_name = "Outposts"
    default_auto_field = "django.db.models.BigAutoField"
    # This process's sending end for outpost messages (core/outposts/hub.py), set by signals.connect().
    publisher = None

    def ready(self):
        from core.outposts import signals
        from core.outposts.models import Outpost

        post_save.connect(_ensure_identity, sender=Outpost, dispatch_uid="outpost-identity")
        signals.connect(self)
