"""What ``ak server``, ``ak worker`` and ``ak migrate`` do to leave a servable instance: migrate, check the
secret key against the database, apply blueprints (the default ones make the flows, the scope mappings and the
embedded outpost), bootstrap.

Each step is idempotent, so every start (and every replica) may run them. The secret key is checked before
any blueprint runs: blueprints create outpost tokens, whose keys derive from it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

LOGGER = logging.getLogger("gatehouse.startup")
MIGRATE_LOCK_ID = 0x6761_7465_6d69  # "gatemi": every replica's migrate takes it (blueprints: STARTUP_LOCK_ID)


@contextlib.contextmanager
def migration_lock(alias: str = "default") -> Iterator[None]:
    """Replicas starting at once migrate one after the other (core/locks.py); the ones that waited then find
    nothing left to apply."""
    from core.locks import advisory

    with advisory(MIGRATE_LOCK_ID, "migrations", alias=alias):
        yield


def prepare(migrate: bool = True) -> list[str]:
    """Bring the database to a servable state; returns human-readable lines for the start-up log.

    Raises core.crypto.key_check.SecretKeyMismatch when the database was made with another secret key."""
    from django.conf import settings
    from django.core.management import call_command

    from core.crypto import key_check
    from core.lifecycle import database_target

    lines = []
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
        lines.append("database migrated")
    recorded = key_check.ensure(settings.SECRET_KEY, database_target(settings.CONFIG))
    if recorded:
        lines.append(recorded)
    from core.blueprints.apply import apply_startup_blueprints

    lines.extend(apply_startup_blueprints())
    from core.accounts.bootstrap import bootstrap

    lines.append(bootstrap())
    return lines
