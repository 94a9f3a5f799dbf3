import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Exit 0 when the local server answers /-/health/live/ (for container health checks)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="", help="health URL (default: the configured HTTP listener)")

    def handle(self, url: str, **options):
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
