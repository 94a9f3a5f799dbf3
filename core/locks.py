"""Locks shared by every process of one install (replicas of ``ak server`` and ``ak worker``), in PostgreSQL.

``advisory(lock_id)`` holds a transaction-scoped advisory lock on a connection of its own for as long as the
``with`` block runs: a session lock would not survive PgBouncer's transaction pooling, while the open transaction
keeps its server connection. A waiter tries again every ``poll`` seconds instead of waiting inside a transaction,
so waiters hold no PgBouncer server connection the holder may need. A process that dies loses its connection and
with it the lock. On SQLite (one machine) it is always granted: SQLite serialises writers itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

LOGGER = logging.getLogger("gatehouse.locks")
POLL_S = 0.5


@contextlib.contextmanager
def advisory(lock_id: int, what: str, *, wait: bool = True, poll: float = POLL_S,
             alias: str = "default") -> Iterator[bool]:
    """Yields True while holding the lock; with ``wait=False``, False at once when another process holds it."""
    from django.db import connections

    if connections[alias].vendor != "postgresql":
        yield True
        return
    holder = connections.create_connection(alias)
    try:
        announced = False
        while True:
            holder.set_autocommit(False)
            with holder.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
                held = cursor.fetchone()[0]
            if held:
                break
            holder.rollback()
            holder.set_autocommit(True)
            if not wait:
                yield False
                return
            if not announced:
                LOGGER.info(f"waiting for another process's {what} to finish")
                announced = True
            time.sleep(poll)
        yield True
    finally:
        try:
            if not holder.get_autocommit():
                holder.rollback()
        finally:
            holder.close()
