from django.apps import AppConfig


class AuthentikProvidersOauth2Config(AppConfig):
    name = "core.oidc"
    label = "authentik_providers_oauth2"
    verbose_name = "OAuth2/OpenID Provider"
    default_auto_field = "django.db.models.BigAutoField"
