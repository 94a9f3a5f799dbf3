"""The Host check for everything Django serves (issue 8 item 3; THREATS "Unknown Host").

Django's own ``ALLOWED_HOSTS`` check is off (``["*"]``) because one known name comes from the
database (the Base URL system setting), which a setting read at start cannot follow; this middleware,
first in the chain, is the check. Known: the names of core/hosts.py ``static_hosts`` (base URL from the
environment, listen addresses, loopback, ``AUTHENTIK_WEB__ALLOWED_HOSTS``), any name added to Django's
``ALLOWED_HOSTS`` (Django's test client adds ``testserver``), and the Base URL setting's host. Anything
else gets a 400 in plain text naming the host and what to set, never Django's DisallowedHost traceback.

The embedded outpost (``/outpost.goauthentik.io/*`` and proxy-mode applications' own hosts) is answered by
the aiohttp front before Django, so it is not restricted here.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host

from core.hosts import base_url_host, refusal, static_hosts
from core.system import base_url

LOGGER = logging.getLogger("gatehouse.hosts")
WARNED_MAX = 100  # distinct refused names logged as warnings (a scanner's random names cannot flood the log)


def known_static(config) -> tuple[str, ...]:
    return static_hosts(config.base_url, (config.listen_http.host, config.listen_https.host), config.allowed_hosts)


class KnownHostMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.static = known_static(settings.CONFIG)
        self.warned: set[str] = set()

    def patterns(self) -> list[str]:
        return [*self.static, *(h for h in settings.ALLOWED_HOSTS if h != "*")]

    def __call__(self, request):
        # X-Forwarded-Host is never read (USE_X_FORWARDED_HOST is off): the Host the client sent counts.
        meta = request.META
        raw = meta["HTTP_HOST"] if "HTTP_HOST" in meta else meta.get("SERVER_NAME", "")  # as Django reads it
        domain, _port = split_domain_port(raw)
        if domain and (validate_host(domain, self.patterns()) or domain == base_url_host(base_url.current())):
            return self.get_response(request)
        self._log(raw, request.META.get("REMOTE_ADDR", ""))
        return HttpResponse(refusal(raw), status=400, content_type="text/plain; charset=utf-8")

    def _log(self, host: str, peer: str) -> None:
        extra = {"host": host[:255], "peer": peer}
        if host not in self.warned and len(self.warned) < WARNED_MAX:
            self.warned.add(host)
            LOGGER.warning("refused a request for an unknown host name; if it is yours, set AUTHENTIK_WEB__BASE_URL "
                           "or add it to AUTHENTIK_WEB__ALLOWED_HOSTS", extra=extra)
        else:
            LOGGER.debug("refused a request for an unknown host name", extra=extra)
