from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.crypto.key_check import SecretKeyMismatch
from core.lifecycle import SERVICE_WAIT_S, wait_for_services


class Command(BaseCommand):
    help = ("Run background work: queued mail (every 2 s), expiry of sessions, tokens, grants and events "
            "(outposts are told). "
            "`ak healthcheck` in the worker's container checks its heartbeat, the database and Redis.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=60.0, help="seconds between expiry passes (default 60)")
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument("--no-migrate", action="store_true", help="do not run migrations first")
        parser.add_argument("--wait", type=float, default=SERVICE_WAIT_S, metavar="SECONDS",
                            help="how long Redis and the database may take to answer at start before the "
                                 f"worker gives up with a message (default {SERVICE_WAIT_S:g}, as authentik)")
        parser.add_argument("--concurrency", type=int, default=1, metavar="N",
                            help="accepted for authentik's `worker --concurrency N`; Gatehouse's passes are "
                                 "short and run one at a time, so N does not change anything (default 1)")

    def handle(self, interval: float, once: bool, no_migrate: bool, concurrency: int, wait: float, **options):
        if not interval > 0:
            raise CommandError(f"--interval {interval:g}: expected a number of seconds above 0")
        if concurrency < 1:
            raise CommandError(f"--concurrency {concurrency}: expected a whole number of 1 or more")
        from core.lifecycle import record_mode
        from core.startup import prepare
        from core.worker import run

        record_mode("worker")  # for `ak healthcheck` in this container
        problem = wait_for_services(settings.CONFIG, wait, announce=lambda line: self.stderr.write(line))
        if problem:
            raise CommandError(problem)
        try:
            lines = prepare(migrate=not no_migrate)
        except SecretKeyMismatch as exc:
            raise CommandError(str(exc)) from None
        for line in lines:
            self.stdout.write(line)
        if concurrency > 1:
            self.stdout.write(f"--concurrency {concurrency} accepted; passes run one at a time")
        run(interval=interval, once=once)
