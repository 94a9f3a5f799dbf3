"""The outbox: mail that a flow asked for, composed and sent by a background sender (core/mail/delivery.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class MailState(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    DROPPED = "dropped"  # no mail to send (no such user, inactive, no address, or the per-user limit)
    FAILED = "failed"  # gave up: every attempt failed, or no base URL to build the link on


class FlowLinkMail(models.Model):
    """A request for a mail with a one-time link that resumes ``flow`` (the email stage, e.g. a password reset).

    The stage writes one row per request whether or not the name exists (the same work and the same answer:
    no user enumeration, no timing difference); ``user`` is null for an unknown name. The sender makes the
    link's FlowToken and the mail only when it sends, so no link or key is ever stored here.
    """

    created = models.DateTimeField(default=timezone.now, db_index=True)
    flow = models.ForeignKey("authentik_flows.Flow", on_delete=models.CASCADE, related_name="+")
    stage = models.ForeignKey("authentik_flows.EmailStage", null=True, on_delete=models.SET_NULL, related_name="+")
    plan = models.JSONField(default=dict)  # the flow plan the link restores (emptied once sent)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    name_key = models.CharField(max_length=255, db_index=True)  # the name as typed, case-folded (limits)
    client_ip = models.CharField(max_length=64, blank=True, default="", db_index=True)
    state = models.CharField(max_length=16, choices=MailState.choices, default=MailState.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt = models.DateTimeField(default=timezone.now, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)  # a sender is on it until then
    sent = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "flow link mail"

    def __str__(self) -> str:
        return f"{self.flow_id} mail #{self.pk} ({self.state})"
