import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import lifecycle


class Command(BaseCommand):
    help = ("Exit 0 when the process beside it is healthy (container health checks): after `ak server`, when "
            "/-/health/live/ answers; after `ak worker`, when its heartbeat is not overdue and the database "
            "(and Redis, when configured) answer. The mode is the one the last `ak server`/`ak worker` here "
            "recorded in the temporary directory.")
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--mode", choices=lifecycle.MODES, default="",
                            help="check this instead of the recorded mode")
        parser.add_argument("--url", default="", help="server health URL (default: the configured HTTP listener)")

    def handle(self, mode: str, url: str, **options):
        mode = mode or lifecycle.recorded_mode()
        if mode == "worker":
            self.check_worker()
        else:
            self.check_server(url)

    def check_server(self, url: str) -> None:
        listen = settings.CONFIG.listen_http
        host = "127.0.0.1" if listen.host in ("0.0.0.0", "::", "") else listen.host  # noqa: S104
        url = url or f"http://{host if ':' not in host else f'[{host}]'}:{listen.port}/-/health/live/"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local health URL
                status = resp.status
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(f"unhealthy: {url}: {exc}") from None
        if status >= 300:
            raise CommandError(f"unhealthy: {url} answered {status}")
        self.stdout.write(f"healthy: {url} answered {status}")

    def check_worker(self) -> None:
        redis_url = settings.CONFIG.redis.url if settings.CONFIG.redis else None
        problems = [p for p in (lifecycle.heartbeat_problem(), lifecycle.database_problem(),
                                lifecycle.redis_problem(redis_url)) if p]
        if problems:
            raise CommandError("unhealthy worker: " + "; ".join(problems))
        self.stdout.write("healthy: worker heartbeat current, database" + (" and redis" if redis_url else "")
                          + " reachable")
