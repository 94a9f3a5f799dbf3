from django.apps import AppConfig


class AuthentikCryptoConfig(AppConfig):
    name = "core.crypto"
    label = "authentik_crypto"
    verbose_name = "Certificates"
    default_auto_field = "django.db.models.BigAutoField"
