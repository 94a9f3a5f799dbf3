"""``ak worker``: background work that no request waits for.

Each pass is idempotent and bounded, so several workers (or none, for a while) are harmless. Queued mail
(core/mail) is sent every few seconds; expiry runs every ``interval``. ``ak server`` sends queued mail
too (a deployment without a worker still mails); a message is claimed by exactly one sender. The expiry pass
runs in one worker at a time (core/locks.py): another worker that finds it running skips its turn.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

LOGGER = logging.getLogger("gatehouse.worker")
EXPIRY_LOCK_ID = 0x6761_7465_6578  # "gateex"


def expire_exclusively() -> dict[str, int]:
    """``expire_once`` unless another worker is running it right now (then: ``{"skipped": 1}``)."""
    from core.locks import advisory

    with advisory(EXPIRY_LOCK_ID, "expiry pass", wait=False) as held:
        return expire_once() if held else {"skipped": 1}


def expire_once() -> dict[str, int]:
    """Delete what has expired; deleting a session row makes every outpost end it (signals)."""
    from django.contrib.sessions.models import Session

    from core.accounts.models import AuthenticatedSession, Token
    from core.events.models import Event
    from core.mail.delivery import expire as expire_mail
    from core.oidc.cleanup import expire_grants  # codes, access/refresh/device tokens

    now = timezone.now()
    counts = {}
    # Row by row, so that pre_delete signals (outpost session end) fire for each one.
    expired_sessions = AuthenticatedSession.objects.filter(Q(expires__lt=now))
    counts["sessions"] = 0
    for session in expired_sessions.iterator():
        session.delete()
        counts["sessions"] += 1
    counts["tokens"] = Token.objects.filter(expiring=True, expires__lt=now).delete()[0]
    counts["events"] = Event.objects.filter(expires__lt=now).delete()[0]
    counts["django_sessions"] = Session.objects.filter(expire_date__lt=now).delete()[0]
    counts.update(expire_grants(now))
    counts["mail"] = expire_mail(now)
    return counts


def send_mail_once() -> dict[str, int]:
    from core.mail.delivery import drain_once

    return drain_once()


def _pass(name: str, work, failing: dict[str, str]) -> None:
    try:
        counts = work()
    except Exception as exc:  # a failed pass must not end the worker; the next pass retries
        if failing.get(name) != str(exc):  # once per distinct failure, not every few seconds
            failing[name] = str(exc)
            LOGGER.exception(f"{name} pass failed")
    else:
        failing.pop(name, None)
        if name == "expiry" or any(counts.values()):
            LOGGER.info(f"{name} pass", extra=counts)
    finally:
        close_old_connections()


def run(interval: float = 60.0, once: bool = False) -> None:
    from core.lifecycle import beat, stopped
    from core.mail.delivery import POLL_SECONDS

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    LOGGER.info("worker started", extra={"interval_s": interval, "mail_poll_s": POLL_SECONDS})
    beat(0)  # alive; the first pass follows at once (the heartbeat's grace covers it)
    tick = min(interval, POLL_SECONDS)
    next_expiry = 0.0
    failing: dict[str, str] = {}
    try:
        while not stop.is_set():
            _pass("mail", send_mail_once, failing)
            if time.monotonic() >= next_expiry:
                _pass("expiry", expire_exclusively, failing)
                next_expiry = time.monotonic() + interval
            if once:
                break
            beat(tick)
            stop.wait(tick)
    finally:
        stopped()
    LOGGER.info("worker stopped")
