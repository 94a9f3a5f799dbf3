"""Issue 12, Events -> Logs: the audit log in the admin, read-only, filtered by action, user, client IP and date,
and searchable."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from core.events.models import Event

pytestmark = pytest.mark.django_db
LOGS = "/if/admin/authentik_events/event/"


@pytest.fixture
def events(admin_client):
    Event.objects.all().delete()
    now = timezone.now()
    made = [Event.objects.create(action="login", user={"pk": 2, "username": "pat"}, client_ip="192.0.2.10",
                                 created=now),
            Event.objects.create(action="login_failed", context={"username": "pat"}, client_ip="192.0.2.99",
                                 created=now - timedelta(days=40)),
            Event.objects.create(action="model_created", user={"pk": 1, "username": "root"}, client_ip="192.0.2.10",
                                 context={"model": {"name": "grafana"}}, created=now)]
    return made


def shown(admin_client, query: str = "") -> list[str]:
    html = admin_client.get(LOGS + query).content.decode()
    return re.findall(r'href="/if/admin/authentik_events/event/([0-9a-f-]{36})/change/', html)


def test_filters_by_action_user_ip_and_date(admin_client, events):
    login, failed, created = (str(e.pk) for e in events)
    html = admin_client.get(LOGS).content.decode()
    for offered in ("?user=pat", "?client_ip=192.0.2.10", "?action__exact=login_failed"):
        assert offered in html
    assert set(shown(admin_client)) == {login, failed, created}
    assert shown(admin_client, "?action__exact=login_failed") == [failed]
    assert shown(admin_client, "?user=pat") == [login]
    assert set(shown(admin_client, "?client_ip=192.0.2.10")) == {login, created}
    when = events[1].created
    assert shown(admin_client, f"?created__year={when.year}&created__month={when.month}&"
                               f"created__day={when.day}") == [failed]


def test_search(admin_client, events):
    assert shown(admin_client, "?q=root") == [str(events[2].pk)]
    assert shown(admin_client, "?q=192.0.2.99") == [str(events[1].pk)]


def test_read_only(admin_client, events):
    event = events[2]
    page = admin_client.get(f"{LOGS}{event.pk}/change/").content.decode()
    assert "grafana" in page and 'name="_save"' not in page
    assert admin_client.post(f"{LOGS}{event.pk}/change/", {"action": "login"}).status_code == 403
    assert admin_client.get(f"{LOGS}{event.pk}/delete/").status_code == 403
    assert admin_client.get(f"{LOGS}add/").status_code == 403
    assert Event.objects.filter(pk=event.pk, action="model_created").exists()
