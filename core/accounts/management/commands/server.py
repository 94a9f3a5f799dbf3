from django.conf import settings
from django.core.management.base import BaseCommand

from core.lifecycle import SERVICE_WAIT_S


class Command(BaseCommand):
    help = ("Start the core: migrate, apply blueprints, bootstrap, then serve HTTP on AUTHENTIK_LISTEN__HTTP "
            "(default 0.0.0.0:9000), HTTPS with a self-signed certificate kept in AUTHENTIK_DATA_DIR/certs on "
            "AUTHENTIK_LISTEN__HTTPS (0.0.0.0:9443) and Prometheus metrics on AUTHENTIK_LISTEN__METRICS "
            "(0.0.0.0:9300). Health: /-/health/live/ and /-/health/ready/. Stops gracefully on SIGTERM/SIGINT.")
    # The system checks import every app's checks (and drf-spectacular's); `ak check` runs them on demand.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--no-migrate", action="store_true",
                            help="do not apply migrations at start (blueprints and bootstrap still run)")
        parser.add_argument("--no-prepare", action="store_true",
                            help="skip migrate, blueprints and bootstrap entirely; /-/health/ready/ answers 503 "
                                 "until another process (ak migrate) has applied every migration")
        parser.add_argument("--wait", type=float, default=SERVICE_WAIT_S, metavar="SECONDS",
                            help="how long Redis and the database may take to answer at start before the "
                                 f"server gives up with a message (default {SERVICE_WAIT_S:g}, as authentik)")

    def handle(self, no_migrate: bool, no_prepare: bool, wait: float, **options):
        from core.lifecycle import record_mode
        from core.server import run

        record_mode("server")  # for `ak healthcheck` in this container
        code = run(settings.CONFIG, prepare=not no_prepare, migrate=not no_migrate, wait=wait)
        if code:
            raise SystemExit(code)
