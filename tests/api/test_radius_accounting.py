"""``POST /api/v3/outposts/radius/<pk>/accounting/``: an Accounting-Request recorded as an event, only for the
provider's own outpost."""

from __future__ import annotations

import json

from core.events.models import Event
from protocols.outpost import RADIUS_ACCOUNTING_EVENT, RADIUS_ACCOUNTING_PATH
from tests.api.test_outpost_authenticate import setup  # noqa: F401 - the fixture

from .conftest import bearer

STOP = {"status": "Stop", "session_id": "s-1", "username": "alice", "nas": "192.0.2.10",
        "nas_identifier": "ap-1", "input_octets": 4294967301, "output_octets": 7, "session_time": 60,
        "terminate_cause": "User-Request", "calling_station_id": "aa-bb-cc-dd-ee-ff"}


def post(setup, body, *, key=None, pk=None):  # noqa: F811
    path = RADIUS_ACCOUNTING_PATH.format(pk=setup["radius"].pk if pk is None else pk)
    return bearer(key or setup["radius-key"]).post(path, json.dumps(body), content_type="application/json")


def test_recorded_as_event(setup):  # noqa: F811
    response = post(setup, STOP)
    assert response.status_code == 201, response.content
    event = Event.objects.get(action=RADIUS_ACCOUNTING_EVENT)
    assert event.user["username"] == "alice" and event.client_ip == "192.0.2.10" and event.app == "radius-app"
    assert event.context["status"] == "Stop" and event.context["session_id"] == "s-1"
    assert event.context["input_octets"] == 4294967301 and event.context["provider"] == "radius-provider"
    assert "nas_port" not in event.context  # empty fields are left out


def test_unknown_user_still_recorded(setup):  # noqa: F811
    assert post(setup, {**STOP, "username": "not-a-user"}).status_code == 201
    event = Event.objects.get(action=RADIUS_ACCOUNTING_EVENT)
    assert event.user == {} and event.context["username"] == "not-a-user"


def test_only_the_providers_outpost(setup):  # noqa: F811
    assert post(setup, STOP, key=setup["ldap-key"]).status_code in (403, 404)
    assert post(setup, STOP, key=setup["proxy-key"]).status_code in (403, 404)
    assert post(setup, STOP, key="nonsense").status_code in (401, 403)
    assert post(setup, STOP, pk=999999).status_code == 404
    assert not Event.objects.filter(action=RADIUS_ACCOUNTING_EVENT).exists()


def test_bad_body_is_400_naming_the_field(setup):  # noqa: F811
    response = post(setup, {**STOP, "nas": "not-an-ip"})
    assert response.status_code == 400 and "nas" in response.content.decode()
    response = post(setup, {**STOP, "input_octets": -1})
    assert response.status_code == 400 and "input_octets" in response.content.decode()
