"""``ak worker``: background work that no request waits for.

Each pass is idempotent and bounded, so several workers (or none, for a while) are harmless.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.db.models import Q
from django.utils import timezone

LOGGER = logging.getLogger("gatehouse.worker")


def expire_once() -> dict[str, int]:
    """Delete what has expired; deleting a session row makes every outpost end it (signals)."""
    from django.contrib.sessions.models import Session

    from core.accounts.models import AuthenticatedSession, Token
    from core.events.models import Event
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
    return counts


def run(interval: float = 60.0, once: bool = False) -> None:
    from core.lifecycle import beat, stopped

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    LOGGER.info("worker started", extra={"interval_s": interval})
    beat(0)  # alive; the first pass follows at once (the heartbeat's grace covers it)
    try:
        while not stop.is_set():
            try:
                counts = expire_once()
            except Exception:  # a failed pass must not end the worker; the next pass retries
                LOGGER.exception("expiry pass failed")
            else:
                LOGGER.info("expiry pass", extra=counts)
            if once:
                break
            beat(interval)
            stop.wait(interval)
    finally:
        stopped()
    LOGGER.info("worker stopped")
