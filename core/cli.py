"""The ``ak`` command: ``server``, ``worker`` and ``outpost`` plus the core's management commands."""

from __future__ import annotations

import os
import sys

USAGE = """usage: ak <command> [options]   (ak <command> --help for each)

  server                          start the core and the embedded outpost (:9000 HTTP, :9443 HTTPS, :9300 metrics)
  worker                          run background work (expiry clean-up, outpost refresh pushes, email)
  outpost proxy|ldap|radius       run a standalone outpost (needs AUTHENTIK_HOST and AUTHENTIK_TOKEN)
  migrate                         create or upgrade the database schema
  showmigrations                  list migrations and whether they are applied
  create_recovery_key <years> <username>
                                  print a one-time /recovery/use-token/?token=... URL for that user
  create_admin_group <username>   put the user into the superuser group "authentik Admins"
  apply_blueprint <file> [...]    apply authentik-format YAML blueprints (idempotent)
  healthcheck                     exit 0 when the local server answers /-/health/live/
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "outpost":
        from outpost.cli import main as outpost_main  # standalone outposts do not load Django

        return outpost_main(argv[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["ak", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
