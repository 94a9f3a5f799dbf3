"""What the executor reports and what it costs: ``Server-Timing: hash;dur=`` on every password check (the
dummy one for unknown users too, so it reveals nothing), the consent title with the application's name, and a
bounded number of queries per executor request (each stage loaded once, with its concrete kind)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from core.accounts.models import Application
from core.flows import models as fm
from core.flows.executor import execute
from core.flows.planner import FlowRequest

pytestmark = pytest.mark.django_db
TIMING = re.compile(r"^hash;dur=\d+(\.\d+)?$")


def _to_password(executor, uid: str):
    ex = executor("default-authentication-flow")
    ex.get()
    assert ex.post(component="ak-stage-identification", uid_field=uid)["component"] == "ak-stage-password"
    return ex


@pytest.mark.parametrize("uid, password", [("alice", "correct horse"), ("alice", "wrong"), ("nobody", "x")])
def test_password_answer_carries_the_hash_timing(flows, alice, executor, uid, password):
    flows.authentication(mfa=False)
    ex = _to_password(executor, uid)
    response = ex.post_raw(component="ak-stage-password", password=password)
    assert TIMING.match(response["Server-Timing"]), response.headers


def test_other_answers_carry_no_timing(flows, alice, executor):
    flows.authentication(mfa=False)
    ex = executor("default-authentication-flow")
    response = ex.client.get(ex.url)
    assert response.status_code == 200 and "Server-Timing" not in response


def test_each_executor_request_costs_bounded_queries(flows, alice, executor, django_assert_max_num_queries):
    flows.authentication()  # identification, password, MFA validation (skipped), login
    ex = _to_password(executor, "alice")
    # Password check, then on the redirect: MFA skip + login + session: each stage loaded once.
    # Measured 19 and 30 (three small queries per stage: binding, kind, concrete row); probing each Stage
    # subclass table in turn cost 6+ more on the second.
    with django_assert_max_num_queries(20):
        ex.post_raw(component="ak-stage-password", password="correct horse")
    with django_assert_max_num_queries(32):
        assert ex.get()["component"] == "xak-flow-redirect"


def test_consent_title_names_the_application(flows, alice):
    app = Application.objects.create(name="Wiki", slug="wiki")
    flow = flows.flow("consent-flow", "authorization", [fm.ConsentStage.objects.create(name="consent")])
    flow.title = "Redirecting to %(app)s"
    flow.save()
    req = FlowRequest(user=alice, client_ip="127.0.0.1", host="testserver")
    first = execute(flow, req, None, {"application": str(app.pk), "consent_permissions": []})
    assert first.component == "ak-stage-consent" and first.challenge["flow_info"]["title"] == "Redirecting to Wiki"
    # Without an application in the plan the title is left as it is (the page shows "the application").
    plain = flows.flow("plain", "authorization", [fm.ConsentStage.objects.create(name="c2")])
    plain.title = "Redirecting to %(app)s"
    plain.save()
    denied = execute(plain, req, None, {})
    assert denied.challenge["flow_info"]["title"] == "Redirecting to %(app)s"
    page = Client()
    page.force_login(alice)
    assert "%(app)s" not in page.get("/if/flow/plain/").content.decode()
