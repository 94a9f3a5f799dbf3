"""THREATS 13 (brute force), 14 (initial setup), outpost IP delegation (§1.7), recovery links."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from core.accounts.bootstrap import admin_exists
from core.accounts.models import AuthenticatedSession, Group, Token, TokenIntents, User, UserTypes
from core.policies.models import LoginFailure
from core.policies.reputation import DEFAULT_LIMITS, canonical_username, retry_after
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


# --- rate limit (THREATS 13) -----------------------------------------------------------------


def test_canonical_username(alice):
    assert canonical_username("Alice") == canonical_username("alice") == "alice"
    assert canonical_username("ALICE@example.com") == "alice"
    assert canonical_username("Nobody@Example.com") == "nobody@example.com"


def test_rate_limit_per_username_across_variants(flows, alice, executor):
    flows.authentication()
    variants = ["Alice", "alice", "alice@example.com", "ALICE@EXAMPLE.COM", "aLiCe"]
    assert len(variants) >= DEFAULT_LIMITS.per_username
    for i, name in enumerate(variants[:DEFAULT_LIMITS.per_username]):
        # a different client address each time: only the username ties them together
        answer = login(executor("default-authentication-flow", REMOTE_ADDR=f"198.51.100.{i + 1}"), name, "wrong")
        assert answer["response_errors"]["password"][0]["code"] == "invalid"
    blocked = login(executor("default-authentication-flow", REMOTE_ADDR="198.51.100.99"), "alice", "correct horse")
    error = blocked["response_errors"]["password"][0]
    assert error["code"] == "throttled" and "try again in" in error["string"]
    assert not AuthenticatedSession.objects.exists()
    # the refusal itself is not another failure, and the password was not checked
    assert LoginFailure.objects.count() == DEFAULT_LIMITS.per_username
    # another user at the same addresses is unaffected
    User.objects.create_user("bob", "bob@example.com", "pw-bob")
    assert login(executor("default-authentication-flow", REMOTE_ADDR="198.51.100.1"), "bob", "pw-bob")[
        "component"] == "xak-flow-redirect"


def test_rate_limit_in_identification_with_password(flows, alice, executor):
    flows.authentication(password_in_identification=True)
    ex = executor("default-authentication-flow")
    ex.get()
    for _ in range(DEFAULT_LIMITS.per_username):
        ex.post(component="ak-stage-identification", uid_field="ALICE", password="nope")
    answer = ex.post(component="ak-stage-identification", uid_field="alice@example.com", password="correct horse")
    assert answer["response_errors"]["non_field_errors"][0]["code"] == "throttled"


def test_rate_limit_per_ip(flows, alice, executor):
    flows.authentication()
    now = timezone.now()
    LoginFailure.objects.bulk_create([LoginFailure(identifier=f"user{i}", ip="192.0.2.10", at=now)
                                      for i in range(DEFAULT_LIMITS.per_ip)])
    blocked = login(executor("default-authentication-flow", REMOTE_ADDR="192.0.2.10"), "alice", "correct horse")
    assert blocked["response_errors"]["password"][0]["code"] == "throttled"
    # alice from elsewhere is fine
    assert login(executor("default-authentication-flow", REMOTE_ADDR="192.0.2.11"), "alice", "correct horse")[
        "component"] == "xak-flow-redirect"


def test_rate_limit_window_expires(alice):
    old = timezone.now() - timezone.timedelta(seconds=DEFAULT_LIMITS.window_seconds + 1)
    LoginFailure.objects.bulk_create([LoginFailure(identifier="alice", ip="192.0.2.1", at=old)
                                      for _ in range(DEFAULT_LIMITS.per_username)])
    assert retry_after("alice", "192.0.2.1") == 0
    LoginFailure.objects.update(at=timezone.now())
    wait = retry_after("Alice@example.com", "192.0.2.2")
    assert 0 < wait <= DEFAULT_LIMITS.window_seconds


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
