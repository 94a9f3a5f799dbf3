"""Every Django ``login()`` gets its AuthenticatedSession row, whoever called it.

The flow's user-login stage (core/flows/views.py ``start_session``) writes the row itself, with the
stage's session duration and the (maybe outpost-delegated) client address; any other ``login()`` --
Django's admin login page ``/if/admin/login/``, ``Client.force_login`` -- used to leave the session
without a row, so core/flows/views.py ``current_user`` logged that user out at their first flow.
The receiver below records one, keyed by the session (``get_or_create``: never a duplicate); its twin
removes the row on any ``logout()``.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.utils import timezone

# Set on the request by the flow's start_session around its login(): it writes the row (and the event).
FLOW_LOGIN_ATTR = "_gatehouse_flow_login"


def _client_ip(request) -> str | None:
    if not request.META.get("REMOTE_ADDR"):
        return None
    from core.client_ip import client_ip

    return client_ip(request)


def record_session(sender, request, user, **kwargs):
    """user_logged_in: the AuthenticatedSession for ``request.session`` (created once) and a login event."""
    from core.accounts.models import AuthenticatedSession

    session = getattr(request, "session", None) if request is not None else None
    if session is None or getattr(request, FLOW_LOGIN_ATTR, False):
        return None
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
