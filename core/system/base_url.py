"""The base URL in effect and the absolute URLs built from it (issue 8 item 3; core/hosts.py says why).

The Base URL system setting wins; while it is empty, ``AUTHENTIK_WEB__BASE_URL`` is used (authentik
2026.8 seeds the setting from that variable and then lets the setting win: the same precedence). The
setting is cached for CACHE_SECONDS and the cache entry is dropped when it is saved, so a change in the
admin applies at once in this process (and, with Redis, in every process).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.db.models.signals import post_delete, post_save
from django.http.request import split_domain_port

from core.hosts import BASE_URL_SETTING, BASE_URL_VARIABLE

LOGGER = logging.getLogger("gatehouse.system")
CACHE_KEY = "gatehouse/system/base_url"
CACHE_SECONDS = 30  # a change made by another process without a shared cache shows within this
DEFAULT_PORTS = {"http": "80", "https": "443"}


class NoBaseURL(LookupError):
    """No base URL is configured: absolute links cannot be built."""

    def __init__(self, purpose: str = "links"):
        super().__init__(f"no base URL is configured, so {purpose} cannot be built: set {BASE_URL_VARIABLE} "
                         f"(e.g. https://auth.example.com) or {BASE_URL_SETTING}")


def stored() -> str:
    """The Base URL system setting ("" when empty or not readable yet)."""
    value = cache.get(CACHE_KEY)
    if value is None:
        from core.system.models import SINGLETON_PK, SystemSettings

        try:
            value = SystemSettings.objects.filter(pk=SINGLETON_PK).values_list("base_url", flat=True).first() or ""
        except DatabaseError as exc:  # not migrated yet: no setting, and nothing cached
            LOGGER.debug("system settings unreadable", extra={"reason": str(exc)})
            return ""
        if not connection.in_atomic_block:  # a value read inside a transaction may yet be rolled back
            cache.set(CACHE_KEY, value, CACHE_SECONDS)
    return value


def current_with_source() -> tuple[str, str]:
    """(base URL, where it comes from) or ("", "") when none is configured."""
    setting = stored()
    if setting:
        return setting, "the Base URL system setting"
    if settings.CONFIG.base_url:
        return settings.CONFIG.base_url, BASE_URL_VARIABLE
    return "", ""


def current() -> str:
    return current_with_source()[0]


def link(path: str, purpose: str = "links") -> str:
    """``path`` (absolute, starting with /) on the base URL. Raises NoBaseURL when there is none."""
    base = current()
    if not base:
        raise NoBaseURL(purpose)
    return base + path


def request_base(request) -> str:
    """The base for absolute URLs in an answer to ``request`` (OIDC discovery, issuer, device URL): the base
    URL when the request came for its host and port, else the URL the caller used (as authentik does, so
    an outpost reaching the core at http://core:9000 gets endpoints it can reach). The Host header was
    checked against the known hosts before this runs."""
    base = current()
    requested = request.build_absolute_uri("/").rstrip("/")
    if not base:
        return requested
    scheme, _, netloc = base.partition("://")
    base_host, base_port = split_domain_port(netloc)
    host, port = split_domain_port(request.get_host().lower())
    if host == base_host and (port or DEFAULT_PORTS[scheme]) == (base_port or DEFAULT_PORTS[scheme]):
        return base
    return requested


def address_for(request) -> tuple[str, str]:
    """The address to give people in snippets and links the admin shows (forward-auth snippets, an enroll link),
    with where it came from, for the page to say: the configured base URL, else the address ``request`` came
    to (which may not be the one the proxies or the user reach Gatehouse at)."""
    base, source = current_with_source()
    if base:
        return base.rstrip("/"), f"from {source}"
    return (request.build_absolute_uri("/").rstrip("/"),
            "the address this page was reached at, as no Base URL is set (System → Settings); if the proxies or "
            "the user reach Gatehouse at another address (e.g. http://gatehouse-server:9000 inside Docker), "
            "use that one, or set the Base URL")


def _forget(**_kwargs) -> None:
    cache.delete(CACHE_KEY)


def connect() -> None:
    from core.system.models import SystemSettings

    post_save.connect(_forget, sender=SystemSettings, dispatch_uid="gatehouse-base-url-save")
    post_delete.connect(_forget, sender=SystemSettings, dispatch_uid="gatehouse-base-url-delete")
