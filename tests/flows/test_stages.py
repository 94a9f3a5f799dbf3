"""Planner rules and the other stages: prompt + policies, enrolment, consent, deny, email recovery,
and the server-rendered page without JavaScript."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from core.accounts.models import Application, AuthenticatedSession, Group, User
from core.events.models import Event
from core.flows import models as fm
from core.flows.models import UserConsent
from core.mail.delivery import drain_once
from core.policies.models import ExpressionPolicy, PasswordPolicy, PolicyBinding
from core.system.models import SystemSettings
from tests.flows.conftest import login

pytestmark = pytest.mark.django_db


def test_flow_policy_denies(flows, executor):
    flow = flows.authentication()
    PolicyBinding.objects.create(target=flow, policy=ExpressionPolicy.objects.create(
        name="nope", expression="ak_message('closed today')\nreturn False"), order=0)
    flow.denied_action = "message"
    flow.save()
    answer = executor("default-authentication-flow").get()
    assert answer == {**answer, "component": "ak-stage-access-denied", "error_message": "closed today"}


def test_stage_binding_policies(flows, alice, executor):
    flow = flows.authentication(mfa=False)
    deny = fm.DenyStage.objects.create(name="deny-non-admins", deny_message="admins only")
    binding = fm.FlowStageBinding.objects.create(target=flow, stage=deny, order=25)
    PolicyBinding.objects.create(target=binding, policy=ExpressionPolicy.objects.create(
        name="not-admin", expression="return not ak_is_group_member(request.user, name='admins')"), order=0)
    # re_evaluate_policies (default): decided when reached, with the pending user
    assert login(executor("default-authentication-flow"), "alice", "correct horse")["error_message"] == \
        "admins only"
    alice.groups.add(Group.objects.create(name="admins"))
    assert login(executor("default-authentication-flow"), "alice", "correct horse")["component"] == \
        "xak-flow-redirect"


def test_evaluate_on_plan_drops_stage(flows, alice, executor):
    flow = flows.authentication(mfa=False)
    deny = fm.DenyStage.objects.create(name="deny-all")
    binding = fm.FlowStageBinding.objects.create(target=flow, stage=deny, order=5, evaluate_on_plan=True,
                                                 re_evaluate_policies=False)
    PolicyBinding.objects.create(target=binding, policy=ExpressionPolicy.objects.create(
        name="never", expression="return False"), order=0)
    assert login(executor("default-authentication-flow"), "alice", "correct horse")["component"] == \
        "xak-flow-redirect"


def test_enrollment_with_password_policy(flows, executor):
    username = fm.Prompt.objects.create(name="e-username", field_key="username", label="Username", order=0)
    email = fm.Prompt.objects.create(name="e-email", field_key="email", type="email", order=1)
    prompt = fm.PromptStage.objects.create(name="enroll-prompt")
    prompt.fields.add(username, email, *flows.password_prompts("enroll"))
    prompt.validation_policies.add(PasswordPolicy.objects.create(name="strong", length_min=12))
    group = Group.objects.create(name="users")
    flows.flow("default-enrollment-flow", "enrollment", [
        prompt, fm.UserWriteStage.objects.create(name="enroll-write", create_users_group=group,
                                                 user_type="internal"),
        fm.UserLoginStage.objects.create(name="enroll-login")])
    ex = executor("default-enrollment-flow")
    assert ex.get()["component"] == "ak-stage-prompt"
    bad_email = ex.post(component="ak-stage-prompt", username="carol", email="nope", password="x",
                        password_repeat="x")
    assert "email" in bad_email["response_errors"]
    weak = ex.post(component="ak-stage-prompt", username="carol", email="carol@example.com", password="short",
                   password_repeat="short")
    assert "at least 12" in weak["response_errors"]["non_field_errors"][0]["string"]
    done = ex.post(component="ak-stage-prompt", username="carol", email="carol@example.com",
                   password="a long enough pw", password_repeat="a long enough pw")
    assert done["component"] == "xak-flow-redirect"
    carol = User.objects.get(username="carol")
    assert carol.check_password("a long enough pw") and group in carol.groups.all()
    assert AuthenticatedSession.objects.filter(user=carol).exists()
    assert Event.objects.filter(action="user_write").exists() and Event.objects.filter(action="password_set").exists()


def test_consent_modes(flows, alice, executor):
    app = Application.objects.create(name="Wiki", slug="wiki")
    stage = fm.ConsentStage.objects.create(name="consent", mode="permanent")
    flow = flows.flow("consent-flow", "authorization", [stage], authentication="require_authenticated")
    client = Client()
    flows.authentication()
    login(executor("default-authentication-flow", client=client), "alice", "correct horse")

    from core.flows.executor import execute
    from core.flows.planner import FlowRequest

    def run(method="GET", data=None, stored=None):
        req = FlowRequest(method=method, data=data or {}, user=alice, client_ip="127.0.0.1", host="testserver")
        return execute(flow, req, stored, {"application": str(app.pk),
                                           "consent_permissions": [{"id": "openid", "name": "Your identity"}]})

    first = run()
    assert first.component == "ak-stage-consent"
    assert first.challenge["permissions"] == [{"id": "openid", "name": "Your identity"}]
    wrong = run("POST", {"component": "ak-stage-consent", "token": "forged"}, first.plan.to_json())
    assert wrong.challenge["response_errors"]["token"]
    done = run("POST", {"component": "ak-stage-consent", "token": first.challenge["token"]}, wrong.plan.to_json())
    assert done.component == "xak-flow-redirect"
    assert UserConsent.objects.filter(user=alice, application=app, expires__isnull=True).exists()
    # permanent consent: the next run passes without asking
    assert run().component == "xak-flow-redirect"


def test_email_recovery_flow(flows, alice, executor):
    ident = fm.IdentificationStage.objects.create(name="rec-ident", user_fields=["email", "username"])
    prompt = fm.PromptStage.objects.create(name="rec-prompt")
    prompt.fields.add(*flows.password_prompts("rec"))
    flows.flow("default-recovery-flow", "recovery", [
        ident, fm.EmailStage.objects.create(name="rec-email"), prompt,
        fm.UserWriteStage.objects.create(name="rec-write"), fm.UserLoginStage.objects.create(name="rec-login")])
    SystemSettings(base_url="https://auth.example.test").save()  # links are built on it (issue 8 item 3)
    ex = executor("default-recovery-flow")
    ex.get()
    sent = ex.post(component="ak-stage-identification", uid_field="alice@example.com")
    assert sent["component"] == "ak-stage-email"
    drain_once()  # the sender (ak worker / ak server's background sender) sends it
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]
    link = re.search(r"https?://\S+", mail.outbox[0].body).group(0)
    assert link.startswith("https://auth.example.test/if/flow/default-recovery-flow/?flow_token=")
    token = link.split("flow_token=")[1]
    # unknown address: same answer, no mail
    ex2 = executor("default-recovery-flow")
    ex2.get()
    assert ex2.post(component="ak-stage-identification", uid_field="nobody@example.com")["component"] == \
        "ak-stage-email"
    drain_once()
    assert len(mail.outbox) == 1
    # the link, in another browser
    other = executor("default-recovery-flow", f"flow_token={token}")
    assert other.get()["component"] == "ak-stage-prompt"
    done = other.post(component="ak-stage-prompt", password="brand new pw", password_repeat="brand new pw")
    assert done["component"] == "xak-flow-redirect"
    alice.refresh_from_db()
    assert alice.check_password("brand new pw")
    # the link works once
    assert executor("default-recovery-flow", f"flow_token={token}").get()["component"] == \
        "ak-stage-identification"


def test_page_without_javascript(flows, alice):
    flows.authentication()
    client = Client(enforce_csrf_checks=True)
    url = "/if/flow/default-authentication-flow/?next=%2Fif%2Fuser%2F"
    page = client.get(url)
    assert page.status_code == 200 and b'name="uid_field"' in page.content
    csrf = client.cookies["authentik_csrf"].value
    step = client.post(url, {"csrfmiddlewaretoken": csrf, "component": "ak-stage-identification",
                             "uid_field": "alice"})
    assert step.status_code == 302 and step["Location"] == url
    page = client.get(url)
    assert b'name="password"' in page.content
    wrong = client.post(url, {"csrfmiddlewaretoken": csrf, "component": "ak-stage-password", "password": "x"})
    assert wrong.status_code == 200 and b"Invalid password" in wrong.content
    done = client.post(url, {"csrfmiddlewaretoken": csrf, "component": "ak-stage-password",
                             "password": "correct horse"})
    assert done.status_code == 302 and done["Location"] == url  # post/redirect/get
    final = client.get(url)  # the MFA stage (no devices: skipped) and the login pass without input
    assert final.status_code == 302 and final["Location"] == "/if/user/"
    assert AuthenticatedSession.objects.filter(user=alice).exists()


def test_page_post_needs_csrf(flows, alice):
    flows.authentication()
    client = Client(enforce_csrf_checks=True)
    client.get("/if/flow/default-authentication-flow/")
    response = client.post("/if/flow/default-authentication-flow/", {"component": "ak-stage-identification",
                                                                      "uid_field": "alice"})
    assert response.status_code == 403


def test_default_redirects_and_cancel(flows, alice):
    flows.authentication()
    flows.invalidation()
    client = Client()
    response = client.get("/flows/-/default/authentication/?next=%2Fx")
    assert response["Location"] == "/if/flow/default-authentication-flow/?next=%2Fx"
    assert client.get("/flows/-/default/invalidation/")["Location"] == "/if/flow/default-invalidation-flow/"
    client.get("/if/flow/default-authentication-flow/")
    assert "gatehouse/flows/plan" in client.session
    assert client.get("/flows/-/cancel/")["Location"] == "/"
    assert "gatehouse/flows/plan" not in client.session


def test_start_flow_helper_seeds_context(flows, alice):
    from django.test import RequestFactory

    from core.flows.views import start_flow

    app = Application.objects.create(name="Wiki", slug="wiki")
    flow = flows.flow("consent-flow", "authorization", [fm.ConsentStage.objects.create(name="c")])
    client = Client()
    flows.authentication()
    login(__import__("tests.flows.conftest", fromlist=["Executor"]).Executor(client, "default-authentication-flow"),
          "alice", "correct horse")
    request = RequestFactory().get("/application/o/authorize/")
    request.session = client.session
    request.user = alice
    response = start_flow(request, flow, {"application": str(app.pk), "consent_permissions": []},
                          next_url="/application/o/authorize/?client_id=x")
    request.session.save()
    assert response["Location"].startswith("/if/flow/consent-flow/?next=")
    challenge = client.get("/api/v3/flows/executor/consent-flow/?query=").json()
    assert challenge["component"] == "ak-stage-consent" and "Wiki" in challenge["header_text"]


def test_password_change_keeps_session(flows, alice, executor):
    flows.authentication()
    prompt = fm.PromptStage.objects.create(name="pc-prompt")
    prompt.fields.add(*flows.password_prompts("pc"))
    flows.flow("default-password-change", "stage_configuration",
               [prompt, fm.UserWriteStage.objects.create(name="pc-write")], authentication="require_authenticated")
    client = Client()
    login(executor("default-authentication-flow", client=client), "alice", "correct horse")
    key = client.cookies["authentik_session"].value
    done = executor("default-password-change", client=client).post(
        component="ak-stage-prompt", password="another pw", password_repeat="another pw")
    assert done["component"] == "xak-flow-redirect"
    alice.refresh_from_db()
    assert alice.check_password("another pw")
    assert client.cookies["authentik_session"].value == key
    assert AuthenticatedSession.objects.filter(session_key=key).exists()
    # still logged in: a require_authenticated flow still plans
    assert executor("default-password-change", client=client).get()["component"] == "ak-stage-prompt"


def test_expression_sets_pending_user_through_flow_plan(flows, alice, executor):
    """authentik's idiom ``context["flow_plan"].context["pending_user"] = ak_user_by(...)``."""
    flow = flows.flow("prefill", "authentication", [fm.UserLoginStage.objects.create(name="prefill-login")])
    binding = fm.FlowStageBinding.objects.get(target=flow)
    PolicyBinding.objects.create(target=binding, order=0, policy=ExpressionPolicy.objects.create(
        name="prefill-user", expression='context["flow_plan"].context["pending_user"] = ak_user_by(username="alice")'
                                      '\nreturn True'))
    assert executor("prefill").get()["component"] == "xak-flow-redirect"
    assert AuthenticatedSession.objects.filter(user=alice).exists()
