"""What ``ak server`` and ``ak worker`` do before serving: migrate, apply blueprints, bootstrap.

Each step is idempotent, so every start (and every replica) may run them.
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("gatehouse.startup")


def prepare(migrate: bool = True) -> list[str]:
    """Bring the database to a servable state; returns human-readable lines for the start-up log."""
    from django.core.management import call_command

    lines = []
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
        lines.append("database migrated")
    try:
        from core.blueprints.apply import apply_startup_blueprints
    except ImportError:  # blueprints not wired yet
        apply_startup_blueprints = None
    if apply_startup_blueprints is not None:
        lines.extend(apply_startup_blueprints())
    from core.accounts.bootstrap import bootstrap

    lines.append(bootstrap())
    return lines
