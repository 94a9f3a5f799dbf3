"""A login session is its AuthenticatedSession row: deleting the row ends the session everywhere (THREATS 12).

Two halves, so that no revocation path can forget one:

* ``end_django_session`` (post_delete of AuthenticatedSession, connected in the app config): the
  Django session behind the row leaves the session store, its Redis cache entry included when
  ``cached_db`` backs sessions. Every way of revoking a session deletes the row -- the admin's delete page
  and bulk action, the portal, the REST API, deleting the user (the cascade deletes row by row, so the
  signal fires for each), logout, expiry -- and every outpost hears SESSION_END from
  core/outposts/signals.py on the same delete.
* ``RevokedSessionMiddleware`` (after Django's AuthenticationMiddleware): a request whose session names
  a user but has no row -- deleted behind the ORM's back (raw SQL, a restored backup), or by another
  process between the two halves -- is logged out before any view sees it, whether the view is the REST
  API's SessionAuthentication, the portal or the admin. One indexed lookup per signed-in request.
"""

from __future__ import annotations

import logging
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser

LOGGER = logging.getLogger("gatehouse.sessions")
CHECKED_ATTR = "_gatehouse_session_row"  # (session key, user id) this request's row was found for


def row_checked(request, session_key, user_id) -> bool:
    """Did RevokedSessionMiddleware find the row for this session key and user earlier in this request?"""
    return getattr(request, CHECKED_ATTR, None) == (session_key, str(user_id))


def session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def end_django_session(sender, instance, **kwargs) -> None:
    """post_delete of an AuthenticatedSession: the Django session goes too (store and cache)."""
    if instance.session_key:
        session_store()(session_key=instance.session_key).delete()


class RevokedSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        user_id = session.get(SESSION_KEY) if session is not None else None
        if user_id is not None:
            if self._has_row(session.session_key, user_id):
                setattr(request, CHECKED_ATTR, (session.session_key, str(user_id)))
            else:
                LOGGER.info("session refused: it was revoked (no AuthenticatedSession row)",
                            extra={"user_id": user_id, "path": request.path})
                session.flush()
                request.user = AnonymousUser()
        return self.get_response(request)

    @staticmethod
    def _has_row(session_key: str | None, user_id) -> bool:
        from core.accounts.models import AuthenticatedSession

        try:
            return bool(session_key) and AuthenticatedSession.objects.filter(
                session_key=session_key, user_id=user_id).exists()
        except (TypeError, ValueError):  # a user id that is no user id: refused like a missing row
            return False
