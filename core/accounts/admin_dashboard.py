"""The admin's index as authentik's Overview: the outposts and their health, logins and failed logins per hour over
the last 24 hours (inline SVG bars drawn here: a chart library would need JavaScript for 48 rectangles), the
system checks, and the ten most recent events. Each part is a function returning plain data for the template
(admin/accounts/dashboard.html); GatehouseAdminSite.index puts them in the context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.urls import reverse
from django.utils import timezone

CHART_HOURS = 24
CERTIFICATE_WARNING = timedelta(days=30)
RECENT_EVENTS = 10
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 9, 4, 80  # px: two bars (logins, failed) per hour


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    link: str = ""


def outposts() -> list[dict]:
    from core.outposts.admin import health
    from core.outposts.models import Outpost

    return [{"outpost": o, **health(o), "url": reverse("admin:authentik_outposts_outpost_change", args=[o.pk])}
            for o in Outpost.objects.all()]


def logins(now=None) -> dict:
    """Logins and failed logins per hour (the ``login`` and ``login_failed`` events), oldest hour first, and
    the SVG bars' geometry."""
    from core.events.models import Event

    now = now or timezone.now()
    last = now.replace(minute=0, second=0, microsecond=0)
    hours = [last - timedelta(hours=n) for n in range(CHART_HOURS - 1, -1, -1)]
    counts = {(row["hour"], row["action"]): row["n"] for row in (
        Event.objects.filter(action__in=("login", "login_failed"), created__gte=hours[0])
        .annotate(hour=TruncHour("created")).values("hour", "action").annotate(n=Count("pk")))}
    rows = [{"hour": h, "logins": counts.get((h, "login"), 0), "failed": counts.get((h, "login_failed"), 0)}
            for h in hours]
    top = max([1, *(max(r["logins"], r["failed"]) for r in rows)])
    step = 2 * BAR_WIDTH + BAR_GAP
    for i, row in enumerate(rows):
        row["x"] = i * step
        row["x_failed"] = i * step + BAR_WIDTH
        row["h_logins"] = round(CHART_HEIGHT * row["logins"] / top)
        row["h_failed"] = round(CHART_HEIGHT * row["failed"] / top)
        row["y_logins"] = CHART_HEIGHT - row["h_logins"]
        row["y_failed"] = CHART_HEIGHT - row["h_failed"]
    return {"rows": rows, "logins": sum(r["logins"] for r in rows), "failed": sum(r["failed"] for r in rows),
            "top": top, "width": CHART_HOURS * step, "height": CHART_HEIGHT, "bar": BAR_WIDTH}


def _secret_key_check() -> Check:
    from core.crypto import key_check

    key = settings.SECRET_KEY
    kept = Path(settings.CONFIG.data_dir) / "secret_key"
    try:
        generated = kept.exists() and kept.read_text().strip() == key
    except OSError:
        generated = False
    source = f"generated on the first start and kept in {kept} (back it up)" if generated else \
        "from AUTHENTIK_SECRET_KEY"
    if key.startswith(("django-insecure", "unusable-")) or len(set(key)) < 10:
        return Check("Secret key", False, f"a placeholder key is in use ({source}): set AUTHENTIK_SECRET_KEY to "
                                          "the output of `openssl rand -base64 60`")
    if key_check.matches(key) is False:
        return Check("Secret key", False, key_check.mismatch_message("this database"))
    return Check("Secret key", True, f"set, {source}")


def _certificate_checks(now) -> list[Check]:
    from core.crypto.api import parse_certificate
    from core.crypto.models import CertificateKeyPair

    found = []
    for pair in CertificateKeyPair.objects.all():
        cert = parse_certificate(pair)
        link = reverse("admin:authentik_crypto_certificatekeypair_change", args=[pair.pk])
        if cert is None:
            found.append(Check(f"Certificate {pair.name}", False, "its certificate is not valid PEM", link))
        elif cert.not_valid_after_utc < now + CERTIFICATE_WARNING:
            when = cert.not_valid_after_utc
            verb = "expired" if when < now else "expires"
            found.append(Check(f"Certificate {pair.name}", False,
                               f"{verb} {when:%Y-%m-%d %H:%M} UTC: replace it or generate a new one", link))
    return found or [Check("Certificates", True, "none expires within 30 days")]


def system_checks(now=None) -> list[Check]:
    from core.system import base_url

    now = now or timezone.now()
    settings_url = reverse("admin:authentik_admin_systemsettings_changelist")
    value, source = base_url.current_with_source()
    email = settings.CONFIG.email
    return [
        Check("Base URL", bool(value), f"{value} (from {source})" if value else
              "not set: links in mail cannot be built; set it under System > Settings", settings_url),
        _secret_key_check(),
        Check("Debug mode", not settings.DEBUG, "on: errors show details to visitors; unset AUTHENTIK_DEBUG"
              if settings.DEBUG else "off"),
        Check("Email", bool(email), f"sent through {email.host}:{email.port}" if email else
              "not configured: mail is printed to the server's log; set AUTHENTIK_EMAIL__HOST", settings_url),
        *_certificate_checks(now),
    ]


def recent_events() -> list:
    from core.events.models import Event

    return list(Event.objects.order_by("-created")[:RECENT_EVENTS])


def context() -> dict:
    now = timezone.now()
    return {"dashboard_outposts": outposts(), "dashboard_logins": logins(now),
            "dashboard_checks": system_checks(now), "dashboard_events": recent_events()}
