"""THREATS 14 (initial setup), outpost IP delegation (§1.7), recovery links; THREATS 13 (brute force) is in
test_reputation.py."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from core.accounts.bootstrap import admin_exists
from core.accounts.models import AuthenticatedSession, Group, Token, TokenIntents, User, UserTypes
from core.policies.models import LoginFailure
from tests.flows.conftest import login

pytestmark = pytest.mark.django_db


def _outpost_token(user_type=UserTypes.INTERNAL_SERVICE_ACCOUNT, intent=TokenIntents.INTENT_API) -> str:
    user = User.objects.create(username=f"ak-outpost-{user_type}-{intent}", type=user_type)
    token = Token(identifier=f"outpost-token-{user_type}-{intent}", intent=intent, user=user, expiring=False)
    key = token.set_key()
    token.save()
    return key


def _headers(key: str, ip: str = "203.0.113.7") -> dict:
    return {"HTTP_X_AUTHENTIK_OUTPOST_TOKEN": key, "HTTP_X_AUTHENTIK_REMOTE_IP": ip}


# --- outpost delegation ----------------------------------------------------------------------


def test_delegated_ip_honoured_with_outpost_token(flows, alice, executor):
    flows.authentication()
    ex = executor("default-authentication-flow", "goauthentik.io/outpost/ldap=true", **_headers(_outpost_token()))
    login(ex, "alice", "wrong")
    assert list(LoginFailure.objects.values_list("ip", flat=True)) == ["203.0.113.7"]


@pytest.mark.parametrize("key_kind", ["garbage", "normal-user-api", "service-app-password"])
def test_delegated_ip_ignored_without_valid_outpost_token(flows, alice, executor, key_kind):
    flows.authentication()
    key = {"garbage": lambda: "not-a-token",
           "normal-user-api": lambda: _outpost_token(UserTypes.INTERNAL),
           "service-app-password": lambda: _outpost_token(intent=TokenIntents.INTENT_APP_PASSWORD)}[key_kind]()
    ex = executor("default-authentication-flow", **_headers(key))
    login(ex, "alice", "wrong")
    assert list(LoginFailure.objects.values_list("ip", flat=True)) == ["127.0.0.1"]


def test_unparsable_delegated_ip_is_not_trusted(flows, alice, executor):
    flows.authentication()
    ex = executor("default-authentication-flow", **_headers(_outpost_token(), ip="1.2.3.4, 5.6.7.8"))
    login(ex, "alice", "wrong")
    assert list(LoginFailure.objects.values_list("ip", flat=True)) == ["127.0.0.1"]


def test_require_outpost_flow(flows, alice, executor):
    flows.authentication(slug="ldap-flow", authentication="require_outpost", mfa=False)
    assert executor("ldap-flow").get()["component"] == "ak-stage-access-denied"
    ex = executor("ldap-flow", "goauthentik.io/outpost/ldap=true", **_headers(_outpost_token()))
    assert login(ex, "alice", "correct horse")["component"] == "xak-flow-redirect"


# --- initial setup (THREATS 14) --------------------------------------------------------------


def test_initial_setup_once_and_never_again(flows, executor):
    flows.initial_setup()
    assert not admin_exists()
    client = Client()
    ex = executor("initial-setup", client=client)
    prompt = ex.get()
    assert prompt["component"] == "ak-stage-prompt"
    assert [f["field_key"] for f in prompt["fields"]] == ["email", "password", "password_repeat"]
    mismatch = ex.post(component="ak-stage-prompt", email="root@example.com", password="s3cret-pw",
                       password_repeat="other")
    assert mismatch["response_errors"]["password_repeat"]
    done = ex.post(component="ak-stage-prompt", email="root@example.com", password="s3cret-pw",
                   password_repeat="s3cret-pw")
    assert done["component"] == "xak-flow-redirect"
    akadmin = User.objects.get(username="akadmin")
    assert akadmin.email == "root@example.com" and akadmin.check_password("s3cret-pw") and akadmin.is_superuser
    assert admin_exists()
    assert AuthenticatedSession.objects.filter(user=akadmin).exists()
    # the plaintext password did not stay in the session
    assert "s3cret-pw" not in str(dict(client.session))

    # never again: not for a new visitor, not for the same session
    for c in (Client(), client):
        again = executor("initial-setup", client=c).get()
        assert again["component"] == "ak-stage-access-denied"
    answer = executor("initial-setup").post(component="ak-stage-prompt", email="evil@example.com",
                                            password="pwned-pw", password_repeat="pwned-pw")
    assert answer["component"] == "ak-stage-access-denied"
    akadmin.refresh_from_db()
    assert akadmin.check_password("s3cret-pw") and akadmin.email == "root@example.com"


def test_initial_setup_stale_plan_refused(flows, executor, admin_group):
    flows.initial_setup()
    ex = executor("initial-setup")
    assert ex.get()["component"] == "ak-stage-prompt"  # the attacker holds an in-progress plan
    real = User.objects.create_user("akadmin", "admin@example.com", "real-admin-pw")
    real.groups.add(admin_group)
    answer = ex.post(component="ak-stage-prompt", email="evil@example.com", password="pwned-pw",
                     password_repeat="pwned-pw")
    assert answer["component"] == "ak-stage-access-denied"
    real.refresh_from_db()
    assert real.check_password("real-admin-pw") and real.email == "admin@example.com"
    assert not AuthenticatedSession.objects.exists()


def test_initial_setup_user_write_rechecks(flows, executor, admin_group):
    """Even if the admin appears between the prompt and the write stage (same request chain)."""
    from core.flows.models import UserWriteStage
    from core.flows.planner import FlowPlan, FlowRequest
    from core.flows.stages.base import Denied, Effects, StageContext
    from core.flows.stages.user_write import UserWriteStageView

    flow = flows.initial_setup()
    User.objects.create_user("someone", "", "x").groups.add(admin_group)
    stage = UserWriteStage.objects.get(name="setup-write")
    ctx = StageContext(flow=flow, binding=None, stage=stage,
                       plan=FlowPlan(str(flow.pk), [], context={"prompt_data": {"password": "p"}}),
                       request=FlowRequest(), effects=Effects())
    assert isinstance(UserWriteStageView(ctx).get(), Denied)
    assert not User.objects.filter(username="akadmin").exists()


# --- recovery link ---------------------------------------------------------------------------


# The recovery key's way through the recovery flow (and its second factor): tests/flows/test_recovery_mfa.py.


def test_recovery_refuses_api_tokens(alice):
    token = Token(identifier="api", intent=TokenIntents.INTENT_API, user=alice)
    key = token.set_key()
    token.save()
    assert Client().get(f"/recovery/use-token/?token={key}").status_code == 404
    assert settings.SESSION_COOKIE_NAME not in Client().cookies
    assert Group.objects.count() == 0
