from django.apps import AppConfig


class MailConfig(AppConfig):
    """Mail the flows ask for, sent in the background (issue 8 item 10)."""

    name = "core.mail"
    label = "gatehouse_mail"
    default_auto_field = "django.db.models.BigAutoField"
