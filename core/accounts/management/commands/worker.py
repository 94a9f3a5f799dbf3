from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run background work: expiry of sessions, tokens, grants and events (outposts are told)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=60.0, help="seconds between passes (default 60)")
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument("--no-migrate", action="store_true", help="do not run migrations first")

    def handle(self, interval: float, once: bool, no_migrate: bool, **options):
        from core.startup import prepare
        from core.worker import run

        for line in prepare(migrate=not no_migrate):
            self.stdout.write(line)
        run(interval=interval, once=once)
