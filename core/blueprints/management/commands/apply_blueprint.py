from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.blueprints.apply import apply_file
from core.blueprints.tags import BlueprintError


class Command(BaseCommand):
    help = ("Apply authentik-format YAML blueprints now (each file in its own transaction; applying an "
            "unchanged file again changes nothing). Exits 1 when any file fails.")

    # Applying data needs no system checks; skipping them keeps the command usable while another
    # app is misconfigured (the errors would be unrelated to the blueprint).
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="file", help="blueprint YAML file(s)")

    def handle(self, files: list[str], **options):
        failed = []
        for name in files:
            try:
                outcome = apply_file(Path(name))
            except BlueprintError as exc:
                failed.append(str(exc))
                self.stderr.write(f"error: {exc}")
                continue
            self.stdout.write(outcome.line())
        ok = len(files) - len(failed)
        self.stdout.write(f"{ok} of {len(files)} blueprint(s) applied")
        if failed:
            raise CommandError(f"{len(failed)} blueprint(s) failed; nothing of a failed file was applied")
