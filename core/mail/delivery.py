"""Sending the outbox: compose each queued flow-link mail, send it, retry with backoff (issue 8 item 10).

``ak worker`` drains the outbox, and so does a background thread of ``ak server`` (Sender below), so that
``make run`` (a server and no worker) sends mail too. A message is claimed with one conditional UPDATE
before it is sent, so any number of senders never send one twice; a sender that dies mid-send releases
its claim after CLAIM.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import threading
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.utils import timezone

from core.accounts.models import hash_key
from core.durations import parse
from core.flows.models import FlowToken
from core.mail.models import FlowLinkMail, MailState
from core.mail.outbox import PER_USER, WINDOW
from core.system import base_url

LOGGER = logging.getLogger("gatehouse.mail")
BATCH = 20  # messages per pass; the next pass follows at once when a pass was full
CLAIM = timedelta(minutes=2)  # a claim outlives one SMTP exchange (EMAIL_TIMEOUT is 10 s)
MAX_ATTEMPTS = 8  # with the backoff below: given up about 20 minutes after the first try
BACKOFF_FIRST = timedelta(seconds=10)
BACKOFF_MAX = timedelta(minutes=10)
POLL_SECONDS = 2.0  # how often a sender looks for new or due messages when nothing wakes it
KEEP = timedelta(days=1)  # finished rows are deleted after this (the limits look back WINDOW)
DEFAULT_EXPIRY = "minutes=30"
# The server is unreachable or refuses us: every other message would fail the same way, so the pass stops
# (their attempts are not spent) and the failed one is retried after its backoff.
CONNECTION_ERRORS = (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, smtplib.SMTPHeloError,
                     smtplib.SMTPAuthenticationError)


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: 10 s, 20 s, 40 s, ... capped at 10 minutes."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def _due(now):
    return FlowLinkMail.objects.filter(state=MailState.PENDING, next_attempt__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def _finish(row: FlowLinkMail, state: str, error: str = "", **fields) -> None:
    FlowLinkMail.objects.filter(pk=row.pk).update(state=state, last_error=error[:1000], claimed_until=None, **fields)


def _compose(row: FlowLinkMail, key: str) -> EmailMessage:
    user, stage = row.user, row.stage
    link = base_url.link(f"/if/flow/{row.flow.slug}/?flow_token={key}", "the email stage's links")
    body = (f"Hello {user.name or user.username},\n\nuse this link to continue (it works once):\n{link}\n\n"
            "If you did not ask for this, ignore this message.")
    return EmailMessage((stage.subject if stage else "") or "Gatehouse", body, settings.DEFAULT_FROM_EMAIL,
                        [user.email])


class _ServerDown(Exception):
    """The mail server could not be reached: end this pass."""


def _deliver(row: FlowLinkMail, connection, now) -> str:
    """Send one claimed row; returns what became of it: sent, dropped, retry or failed."""
    user = row.user
    if user is None or not user.is_active or not user.email:
        _finish(row, MailState.DROPPED, "no active user with an email address for this name")
        return "dropped"
    recent = FlowLinkMail.objects.filter(user=user, state=MailState.SENT, sent__gte=now - WINDOW).count()
    if recent >= PER_USER:
        LOGGER.info("flow link mail not sent: the per-user limit was reached",
                    extra={"user": user.username, "sent_recently": recent, "flow": row.flow.slug})
        _finish(row, MailState.DROPPED, f"{recent} mails were sent to this user in the last {WINDOW}")
        return "dropped"
    if not base_url.current():
        error = str(base_url.NoBaseURL("the email stage's links"))
        LOGGER.error(f"flow link mail not sent: {error}", extra={"flow": row.flow.slug})
        _finish(row, MailState.FAILED, error)
        return "failed"
    key = secrets.token_urlsafe(32)
    expiry = parse((row.stage.token_expiry if row.stage else "") or DEFAULT_EXPIRY)
    token = FlowToken.objects.create(key_hash=hash_key(key), flow=row.flow, plan=row.plan, user=user,
                                     expires=timezone.now() + expiry)
    try:
        connection.send_messages([_compose(row, key)])
    except (OSError, smtplib.SMTPException) as exc:
        token.delete()  # this attempt's link never reached anybody
        connection.close()
        attempts = row.attempts + 1
        error = f"{type(exc).__name__}: {exc}"
        where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        if attempts >= MAX_ATTEMPTS:
            LOGGER.error(f"flow link mail given up after {attempts} attempts; check AUTHENTIK_EMAIL__* ({where})",
                         extra={"flow": row.flow.slug, "error": error})
            _finish(row, MailState.FAILED, error, attempts=attempts)
            return "failed"
        wait = backoff(attempts)
        LOGGER.warning(f"flow link mail not sent ({where}); retrying in {int(wait.total_seconds())} s",
                       extra={"flow": row.flow.slug, "error": error, "attempt": attempts})
        FlowLinkMail.objects.filter(pk=row.pk).update(attempts=attempts, next_attempt=now + wait,
                                                     claimed_until=None, last_error=error[:1000])
        if isinstance(exc, CONNECTION_ERRORS):
            raise _ServerDown from exc
        return "retry"
    _finish(row, MailState.SENT, sent=timezone.now(), attempts=row.attempts + 1, plan={})
    LOGGER.info("flow link mail sent", extra={"flow": row.flow.slug, "user": user.username})
    return "sent"


def send_test_mail(address: str) -> str:
    """Send one test mail to ``address`` now, through the connection the outbox uses (the admin's "SMTP test
    mail"). Returns where it went; raises OSError or smtplib.SMTPException as the server answered."""
    where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}" if "smtp" in settings.EMAIL_BACKEND else \
        "the server's log (no AUTHENTIK_EMAIL__HOST is set)"
    body = (f"This is a test mail from Gatehouse ({base_url.current() or 'no base URL set'}).\n\n"
            f"It was sent through {where} from {settings.DEFAULT_FROM_EMAIL}: mail delivery works.")
    connection = get_connection(fail_silently=False)
    try:
        connection.send_messages([EmailMessage("Gatehouse test mail", body, settings.DEFAULT_FROM_EMAIL, [address])])
    finally:
        connection.close()
    return where


def drain_once(now=None) -> dict[str, int]:
    """Send what is due (at most BATCH messages); returns how many were sent, dropped, retried, failed."""
    now = now or timezone.now()
    counts = dict.fromkeys(("sent", "dropped", "retry", "failed"), 0)
    pks = list(_due(now).order_by("next_attempt", "pk").values_list("pk", flat=True)[:BATCH])
    if not pks:
        return counts
    connection = get_connection(fail_silently=False)
    try:
        for pk in pks:
            if not _due(now).filter(pk=pk).update(claimed_until=now + CLAIM):
                continue  # another sender has it
            row = FlowLinkMail.objects.select_related("flow", "stage", "user").get(pk=pk)
            try:
                counts[_deliver(row, connection, now)] += 1
            except _ServerDown:
                counts["retry"] += 1
                break
    finally:
        connection.close()
    return counts


def expire(now=None) -> int:
    """Delete finished rows older than KEEP (the worker's expiry pass)."""
    cutoff = (now or timezone.now()) - KEEP
    return FlowLinkMail.objects.filter(created__lt=cutoff).exclude(state=MailState.PENDING).delete()[0]


class Sender:
    """Drains the outbox in a thread: at once when this process queues a mail, else every POLL_SECONDS."""

    def __init__(self, poll: float = POLL_SECONDS):
        self.poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-sender", daemon=True)

    def _queued(self, sender, created: bool = False, **_kwargs) -> None:
        if created:
            transaction.on_commit(self._wake.set)  # the row is visible to this thread only once committed

    def start(self) -> None:
        post_save.connect(self._queued, sender=FlowLinkMail, weak=False, dispatch_uid=f"mail-sender-{id(self)}")
        self._thread.start()

    def _run(self) -> None:
        waiting_for = None  # the database problem already reported (once, not every pass)
        while not self._stop.is_set():
            full = False
            try:
                close_old_connections()
                counts = drain_once()
                full = sum(counts.values()) >= BATCH
                if any(counts.values()):
                    LOGGER.debug("mail pass", extra=counts)
                waiting_for = None
            except DatabaseError as exc:  # not migrated yet, or the database is away: the next pass retries
                if str(exc) != waiting_for:
                    waiting_for = str(exc)
                    LOGGER.warning("queued mail waits for the database", extra={"reason": waiting_for})
            except Exception:  # a failed pass must not end the sender; the next one retries
                LOGGER.exception("mail pass failed")
            finally:
                close_old_connections()
            if not full:
                self._wake.wait(self.poll)
                self._wake.clear()
        connections.close_all()  # this thread's connections

    def stop(self, timeout: float = 15.0) -> None:
        post_save.disconnect(sender=FlowLinkMail, dispatch_uid=f"mail-sender-{id(self)}")
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
