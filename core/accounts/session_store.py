"""Django's database session stores (SESSION_ENGINE), minus one query per new session.

Django makes a new session key by asking the database whether a random key exists, then inserting it with
``must_create`` -- which already refuses a taken key (CreateError, and ``create()`` tries another). The question
costs a query on every first request and every login (``cycle_key``) for a collision of 32 random characters that
the insert catches anyway; these stores skip it. Everything else is Django's.
"""

from __future__ import annotations

from django.contrib.sessions.backends import cached_db, db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError
from django.utils.crypto import get_random_string


class _InsertOnly:
    def create(self):
        while True:
            self._session_key = get_random_string(32, VALID_KEY_CHARS)
            try:
                self.save(must_create=True)  # an existing key raises CreateError: try another
            except CreateError:
                continue
            self.modified = True
            return


class SessionStore(_InsertOnly, db.SessionStore):
    """``django.contrib.sessions.backends.db`` without the existence probe."""


class CachedSessionStore(_InsertOnly, cached_db.SessionStore):
    """``django.contrib.sessions.backends.cached_db`` without the existence probe."""
