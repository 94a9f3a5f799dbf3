"""The ``ak`` command: ``server``, ``worker`` and ``outpost`` plus the core's management commands.

Before a command touches the database, ``ak`` checks what a newcomer would otherwise learn from a traceback
or, worse, not at all; each problem is one line on stderr and exit code 1:
- the data directory: which one is used (printed), and a missing one is refused, not silently created, by
  every command but ``server``, ``worker`` and ``migrate`` (core/config.py ``data_dir_problem``);
- the database: reachable, migrated (else: run ``ak migrate``), and made with this secret key
  (core/crypto/key_check.py). ``server``, ``worker`` and ``migrate`` check these themselves, after a bounded
  wait for the database and Redis.
"""

from __future__ import annotations

import os
import sys

USAGE = """usage: ak <command> [options]   (ak <command> --help for each)

  server                          start the core and the embedded outpost (:9000 HTTP, :9443 HTTPS, :9300 metrics)
  worker                          run background work (expiry clean-up, outpost refresh pushes, email)
  outpost proxy|ldap|radius       run a standalone outpost (needs AUTHENTIK_HOST and AUTHENTIK_TOKEN)
  migrate                         create or upgrade the database, then apply the default blueprints (as a start)
  showmigrations                  list migrations and whether they are applied
  create_recovery_key <years> <username>
                                  print a one-time /recovery/use-token/?token=... URL for that user
  create_admin_group <username>   put the user into the superuser group "authentik Admins"
  apply_blueprint <file> [...]    apply authentik-format YAML blueprints (idempotent)
  rotate_secret_key --yes         only when the secret key is lost: re-key the outpost tokens, end every session
  healthcheck                     exit 0 when the local server answers /-/health/live/
"""

# Commands that create what they need (or check it themselves after a bounded wait).
STARTS = ("server", "worker", "migrate")
# Commands that work without a migrated database; every other command needs one.
SCHEMA_FREE = frozenset({
    *STARTS, "healthcheck", "showmigrations", "makemigrations", "sqlmigrate", "squashmigrations",
    "optimizemigration", "check", "dbshell", "shell", "diffsettings", "help", "version", "test", "testserver",
    "sendtestemail", "startapp", "startproject", "compilemessages", "makemessages", "collectstatic", "findstatic",
    "inspectdb", "sqlflush", "sqlsequencereset",
})
# Commands that run while the secret key does not match: the one that fixes it, and those that do not use it.
KEY_FREE = frozenset({"rotate_secret_key", "showmigrations", "dbshell", "healthcheck", "shell", "check"})
QUIET = frozenset({"healthcheck", "help", "version"})  # run by machines every few seconds


def _wants_help(argv: list[str]) -> bool:
    return any(arg in ("-h", "--help") for arg in argv[1:]) or argv[0] in ("help", "version")


def _fail(line: str) -> int:
    print(f"gatehouse: {line}", file=sys.stderr)
    return 1


def _database_problems(command: str) -> str | None:
    """Reachable, migrated, made with this secret key: the first problem as one line, else None."""
    from django.conf import settings
    from django.core.management import get_commands

    from core import lifecycle
    from core.crypto import key_check

    config = settings.CONFIG
    if command in SCHEMA_FREE or command not in get_commands():  # Django itself answers an unknown command
        return None
    problem = lifecycle.wait_for_services(config, 0, redis=False) or lifecycle.schema_problem(config)
    if problem is None and command not in KEY_FREE and key_check.matches(settings.SECRET_KEY) is False:
        problem = key_check.mismatch_message(lifecycle.database_target(config))
    return problem


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "outpost":
        from outpost.cli import main as outpost_main  # standalone outposts do not load Django

        return outpost_main(argv[1:])
    from core.config import data_dir_problem, resolve_data_dir

    command, asked_for_help = argv[0], _wants_help(argv)
    if not asked_for_help and command not in QUIET:
        where = resolve_data_dir(os.environ)
        if command != "server":  # the server says it in its JSON log (below), one object per line
            print(f"gatehouse: {where.describe()}", file=sys.stderr)
        problem = data_dir_problem(os.environ, may_create=command in STARTS)
        if problem:  # before the settings are read: reading them makes the directory and a secret key
            return _fail(problem)
        if command in STARTS:
            try:
                where.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                return _fail(f"cannot create the {where.describe()}: {exc.strerror or exc}; set "
                             "AUTHENTIK_DATA_DIR to a writable directory")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django
    from django.core.management import execute_from_command_line

    django.setup()
    if command == "server" and not asked_for_help:
        import logging

        logging.getLogger("gatehouse.server").info(resolve_data_dir(os.environ).describe())
    if not asked_for_help:
        problem = _database_problems(command)
        if problem:
            return _fail(problem)
    execute_from_command_line(["ak", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
