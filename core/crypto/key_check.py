"""Is AUTHENTIK_SECRET_KEY the key this database was made with?

Outpost tokens are derived from the secret key (core/accounts/models.py ``Token.derive_key``), so a database
restored under another key used to start "healthy" while the embedded outpost's token was refused (403),
forward auth answered 400 and ``view_key`` handed out keys the core refused. The database therefore keeps a
check value, HMAC-SHA256 (RFC 2104) of a fixed text and a random salt under the key it was made with: written
by the first migrate (or by the next start of a database made before the check existed) and compared by every
start and every ``ak`` command that uses the database. Only the check value is stored, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import DatabaseError, IntegrityError, transaction

CHECK_TEXT = "gatehouse secret key check, v1"
ROW = 1  # one row, always this primary key: two replicas starting at once cannot both write one


class SecretKeyMismatch(RuntimeError):
    """The configured secret key is not the one this database was made with; the message says what to do."""


def check_value(secret_key: str, salt: str) -> str:
    return hmac.new(secret_key.encode(), f"{CHECK_TEXT}:{salt}".encode(), hashlib.sha256).hexdigest()


def _stored():
    """The stored check, or None when there is none yet (or no table yet: not migrated)."""
    from core.crypto.models import SecretKeyCheck

    try:
        return SecretKeyCheck.objects.filter(pk=ROW).first()
    except DatabaseError:  # the table does not exist yet; `ak migrate` is what to run, said elsewhere
        return None


def matches(secret_key: str) -> bool | None:
    """True or False when the database holds a check value, None when it holds none (yet)."""
    row = _stored()
    if row is None:
        return None
    return hmac.compare_digest(row.value, check_value(secret_key, row.salt))


def record(secret_key: str, replace: bool = False) -> bool:
    """Store the check value of ``secret_key`` unless one is there (``replace``: overwrite it). True if written."""
    from core.crypto.models import SecretKeyCheck

    salt = secrets.token_hex(16)
    value = check_value(secret_key, salt)
    if replace:
        SecretKeyCheck.objects.update_or_create(pk=ROW, defaults={"salt": salt, "value": value})
        return True
    try:
        with transaction.atomic():
            _, created = SecretKeyCheck.objects.get_or_create(pk=ROW, defaults={"salt": salt, "value": value})
    except IntegrityError:  # another process wrote it between our read and our write
        return False
    return created


def mismatch_message(database: str) -> str:
    return (f"the secret key (AUTHENTIK_SECRET_KEY, or when it is unset the data directory's secret_key file) "
            f"differs from the one this database ({database}) was made with. Start with the original key. Only if "
            "it is truly lost: `ak rotate_secret_key --yes` re-keys the outpost tokens (standalone outposts then "
            "need their new token) and ends every login session; API tokens keep working, but keys kept for "
            "view_key cannot be shown again")


def ensure(secret_key: str, database: str) -> str | None:
    """Raise SecretKeyMismatch when the stored check value belongs to another key; record it when missing.

    Returns a line for the start-up log when it wrote the check value, else None."""
    same = matches(secret_key)
    if same is False:
        raise SecretKeyMismatch(mismatch_message(database))
    if same is None and record(secret_key):
        return "secret key check value recorded in the database (later starts refuse another key)"
    if same is None and matches(secret_key) is False:  # a replica with another key recorded first
        raise SecretKeyMismatch(mismatch_message(database))
    return None
