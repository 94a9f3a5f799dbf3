"""Issue 12 item 1: the admin's index as authentik's Overview: outposts with their health, logins and failed
logins per hour (server-rendered SVG), the system checks and the last ten events, above the menus."""

from __future__ import annotations

import datetime
import re
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import Client, override_settings
from django.utils import timezone

from core.events.models import Event
from core.outposts.models import Outpost

pytestmark = pytest.mark.django_db
INDEX = "/if/admin/"


def pem_pair(days: int, name: str = "edge.example.test") -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def section(html: str, ident: str) -> str:
    start = html.index(f'id="{ident}"')
    return html[start:html.index("</table>", start)] if "<table" in html[start:start + 400] else html[start:]


def test_outposts_with_their_health_above_the_menus(admin_client, monkeypatch):
    from core.outposts import state

    outpost = Outpost.objects.create(name="remote ldap", type="ldap")
    state.record_state(outpost, "instance-1", {"version": "2026.8.1", "hostname": "ldap-1"})
    page = admin_client.get(INDEX).content.decode()
    assert page.index('id="dashboard-outposts"') < page.index(">Applications<")  # above the menu sections
    row = next(r for r in re.findall(r'<tr class="outpost-health">(.*?)</tr>', page, re.S) if "remote ldap" in r)
    assert "2026.8.1" in row and "LDAP" in row
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row)  # last seen


def test_logins_and_failures_per_hour_over_24_hours(admin_client):
    Event.objects.all().delete()  # root's force_login wrote a login event
    now = timezone.now()
    for hours_ago, action, n in ((0, "login", 3), (0, "login_failed", 2), (5, "login", 1), (30, "login", 7)):
        for _ in range(n):
            Event.objects.create(action=action, created=now - timedelta(hours=hours_ago))
    page = admin_client.get(INDEX).content.decode()
    assert re.search(r'id="logins-total">4<', page) and re.search(r'id="failed-total">2<', page)
    start = page.index('<svg id="logins-chart"')
    chart = page[start:page.index("</svg>", start)]
    assert chart.count("<rect") == 48
    assert f"{now:%H}:00: 3 logins, 2 failed" in chart


def test_system_checks(admin_client, settings):
    from core.crypto.models import CertificateKeyPair
    from core.system.models import SystemSettings

    soon, _ = pem_pair(days=10)
    later, _ = pem_pair(days=300)
    CertificateKeyPair.objects.create(name="expiring soon", certificate_data=soon)
    CertificateKeyPair.objects.create(name="good for long", certificate_data=later)
    page = admin_client.get(INDEX).content.decode()
    checks = {name: state for state, name in re.findall(
        r'<tr class="system-check (check-\w+)"><th scope="row">([^<]+)</th>', page)}
    assert checks["Base URL"] == "check-problem"  # not set in the tests
    assert checks["Debug mode"] == "check-ok" and checks["Secret key"] == "check-ok"
    assert checks["Certificate expiring soon"] == "check-problem"
    assert "Certificate good for long" not in checks
    assert "Email" in checks
    SystemSettings(base_url="https://auth.example.test").save()
    with override_settings(DEBUG=True):
        page = admin_client.get(INDEX).content.decode()
    checks = {name: state for state, name in re.findall(
        r'<tr class="system-check (check-\w+)"><th scope="row">([^<]+)</th>', page)}
    assert checks["Base URL"] == "check-ok" and checks["Debug mode"] == "check-problem"
    assert "https://auth.example.test" in page


def test_the_last_ten_events_link_to_the_event_log(admin_client):
    for n in range(12):
        Event.objects.create(action="custom_", context={"n": n}, created=timezone.now() - timedelta(minutes=n))
    page = admin_client.get(INDEX).content.decode()
    events = page[page.index('id="recent-events"'):]
    assert len(re.findall(r'href="/if/admin/authentik_events/event/[0-9a-f-]{36}/change/"', events)) == 10
    assert 'href="/if/admin/authentik_events/event/" id="all-events"' in events


def test_the_overview_needs_a_superuser(default_flows):
    from core.accounts.models import User

    client = Client()
    client.force_login(User.objects.create_user("pat", "pat@example.com", "pw-pw-pw-1"))
    page = client.get(INDEX)
    assert page.status_code in (302, 403) and b"dashboard-outposts" not in page.content
