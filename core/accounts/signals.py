"""Every Django ``login()`` either comes from the flow or is undone (issue 8 item 1: every way to a logged-in
session goes through the flow executor).

The flow's user-login stage (core/flows/views.py ``start_session``) marks the request around its ``login()`` and
writes the AuthenticatedSession row itself, with the stage's session duration and the (maybe outpost-delegated)
client address. Any other ``login()`` while a request is being served -- a view that checks a password itself,
as Django's admin login form did -- skips the flow's stages (MFA), rate limits and events: the receiver below
undoes it (the session is flushed, the request answers 403), logs an error and records a ``suspicious_request``
event. A ``login()`` outside any request (``Client.force_login`` in tests, ``ak shell``) cannot come from a
client; it keeps its AuthenticatedSession row so the first flow does not log that user out. The twin receiver
removes the row on any ``logout()``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import PermissionDenied
from django.utils import timezone

LOGGER = logging.getLogger("gatehouse.accounts")
# Set on the request by the flow's start_session around its login(): it writes the row (and the event).
FLOW_LOGIN_ATTR = "_gatehouse_flow_login"
OUTSIDE_FLOW = "Logins go through the authentication flow; this page may not log anyone in."


def _client_ip(request) -> str | None:
    if not request.META.get("REMOTE_ADDR"):
        return None
    from core.client_ip import client_ip

    return client_ip(request)


def _refuse(request, user) -> None:
    """Undo a login() that did not come from the flow, say so, and stop the request (fail closed)."""
    from django.contrib.auth import logout

    from core.events.record import record

    path = getattr(request, "path", "")
    logout(request)  # flushes the session: nothing of this login is saved or sent back
    LOGGER.error("login of %s at %s undone: it did not come from the authentication flow's user-login stage",
                 user.username, path)
    record("suspicious_request", user=user, client_ip=_client_ip(request), path=path,
           message="login outside the authentication flow undone")
    raise PermissionDenied(OUTSIDE_FLOW)


def record_session(sender, request, user, **kwargs):
    """user_logged_in: refuse a served login() that skipped the flow; else the AuthenticatedSession for
    ``request.session`` (created once) and a login event."""
    from core.accounts.models import AuthenticatedSession
    from core.events.audit import current_request

    session = getattr(request, "session", None) if request is not None else None
    if session is None or getattr(request, FLOW_LOGIN_ATTR, False):
        return None
    if current_request() is not None:
        _refuse(request, user)
    if not session.session_key:
        session.save()
    ip = _client_ip(request)
    row, created = AuthenticatedSession.objects.get_or_create(
        session_key=session.session_key,
        defaults={"user": user, "last_ip": ip,
                  "last_user_agent": request.META.get("HTTP_USER_AGENT", "")[:512],
                  "expires": timezone.now() + timedelta(seconds=session.get_expiry_age())})
    if created:
        from core.events.record import record

        record("login", user=user, client_ip=ip, auth_method="django_login",
               path=getattr(request, "path", "") or "")
    return row


def end_session(sender, request, user, **kwargs) -> None:
    """user_logged_out (e.g. the admin's log-out): the session's row goes too, so outposts get SESSION_END
    (core/outposts/signals.py) instead of keeping a session Django already flushed."""
    from core.accounts.models import AuthenticatedSession

    session = getattr(request, "session", None) if request is not None else None
    if session is not None and session.session_key:
        AuthenticatedSession.objects.filter(session_key=session.session_key).delete()  # pre_delete fires


def connect() -> None:
    user_logged_in.connect(record_session, dispatch_uid="accounts-authenticated-session")
    user_logged_out.connect(end_session, dispatch_uid="accounts-authenticated-session-end")
