"""The audit log (authentik_events): who did what, from where, when."""

from datetime import timedelta
from uuid import uuid4

from django.db import models
from django.utils import timezone


class EventAction(models.TextChoices):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    USER_WRITE = "user_write"
    SUSPICIOUS_REQUEST = "suspicious_request"
    PASSWORD_SET = "password_set"  # noqa: S105
    SECRET_VIEW = "secret_view"  # noqa: S105
    SECRET_ROTATE = "secret_rotate"  # noqa: S105
    AUTHORIZE_APPLICATION = "authorize_application"
    FLOW_EXECUTION = "flow_execution"
    POLICY_EXECUTION = "policy_execution"
    POLICY_EXCEPTION = "policy_exception"
    CONFIGURATION_ERROR = "configuration_error"
    MODEL_CREATED = "model_created"
    MODEL_UPDATED = "model_updated"
    MODEL_DELETED = "model_deleted"
    EMAIL_SENT = "email_sent"
    SYSTEM_EXCEPTION = "system_exception"
    CUSTOM = "custom_"


def default_event_expiry():
    return timezone.now() + timedelta(days=365)


class Event(models.Model):
    event_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    user = models.JSONField(default=dict, blank=True, help_text="{pk, username, email} of the actor")
    action = models.TextField(choices=EventAction.choices)
    app = models.TextField(default="")
    context = models.JSONField(default=dict, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    expires = models.DateTimeField(default=default_event_expiry)

    class Meta:
        verbose_name = "Event"
        verbose_name_plural = "Events"
        ordering = ["-created"]
        indexes = [models.Index(fields=["action"]), models.Index(fields=["app"])]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%dT%H:%M:%S} {self.action} {self.user.get('username', '-')}"
