"""``ak migrate``: Django's migrate, then what a start does after it, so the instance is complete.

Before, ``ak migrate`` alone left no default flows, scope mappings or embedded outpost (those came from the
blueprints ``ak server`` applies at start), so a blueprint that referred to the embedded outpost failed.
Called from code (``call_command("migrate")``: the test runner, ``core.startup.prepare``) it is Django's
migrate and nothing more.
"""

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate

from core.lifecycle import SERVICE_WAIT_S, wait_for_services


class Command(DjangoMigrate):
    help = ("Create or upgrade the database schema; then, as `ak server` does at start, check the secret key "
            "against the database and apply the default blueprints, those in AUTHENTIK_BLUEPRINTS_DIR and "
            "the AUTHENTIK_BOOTSTRAP_* administrator, so the instance is complete (only when migrating every "
            "app to its latest state).")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--wait", type=float, default=SERVICE_WAIT_S, metavar="SECONDS",
                            help=f"wait up to this long for PostgreSQL to answer (default {SERVICE_WAIT_S:g})")
        parser.add_argument("--schema-only", action="store_true",
                            help="only migrate the schema (no blueprints, no bootstrap)")

    def handle(self, *args, **options):
        from_cli = getattr(self, "_called_from_command_line", False)
        if from_cli:
            problem = wait_for_services(settings.CONFIG, options["wait"], redis=False,
                                        announce=lambda line: self.stderr.write(line))
            if problem:
                raise CommandError(problem)
        from core.startup import migration_lock

        with migration_lock(options["database"]):
            super().handle(*args, **options)
        complete_run = not (options["app_label"] or options["plan"] or options["fake"] or options["check_unapplied"]
                            or options["prune"] or options["schema_only"])
        if from_cli and complete_run and options["database"] == "default":
            self.complete(options["verbosity"])

    def complete(self, verbosity: int) -> None:
        from core.crypto.key_check import SecretKeyMismatch
        from core.startup import prepare

        try:
            lines = prepare(migrate=False)
        except SecretKeyMismatch as exc:
            raise CommandError(str(exc)) from None
        if verbosity:
            for line in lines:
                self.stdout.write(line)
