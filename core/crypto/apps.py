from django.apps import AppConfig


class AuthentikCryptoConfig(AppConfig):
    name = "core.crypto"
    label = "authentik_crypto"
    default_auto_field = "django.db.models.BigAutoField"
