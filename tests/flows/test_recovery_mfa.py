"""A recovery that ends in a login asks for the user's second factor first (issue 8 item 4), on both ways in:
the default recovery flow's mailed link and ``ak create_recovery_key``'s ``/recovery/use-token/`` link, which now
runs through the flow executor too. The flow's limits and ``login_failed`` events apply there (item 5).

Attack: with only the victim's mailbox (or a leaked recovery key), follow the link and get a full session of a
TOTP-protected account. Users without a second factor recover as before.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

import pyotp
import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from core.accounts.models import AuthenticatedSession, Token, TokenIntents, User
from core.events.models import Event
from core.flows import models as fm
from core.flows.models import Flow, TOTPDevice
from core.flows.stages.user_login import SECOND_FACTOR_NEEDED
from core.mail.delivery import drain_once
from core.system.models import SystemSettings
from tests.flows.conftest import Executor, failures_until_throttled

pytestmark = pytest.mark.django_db

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - a test secret
RECOVERY = "default-recovery-flow"
NEW_PASSWORD = "a-new-password-2"  # noqa: S105 - a test password


@pytest.fixture
def tina(db) -> User:
    """A user with TOTP enrolled."""
    user = User.objects.create_user("tina", "tina@example.com", "old-password-1")
    TOTPDevice.objects.create(user=user, key=SECRET, confirmed=True, name="phone")
    return user


@pytest.fixture
def bob(db) -> User:
    """A user without a second factor."""
    return User.objects.create_user("bob", "bob@example.com", "old-password-1")


def code() -> str:
    return pyotp.TOTP(SECRET).now()


def wrong_code() -> str:
    return "000000" if code() != "000000" else "111111"


def logged_in_as(client: Client) -> str | None:
    pk = client.session.get("_auth_user_id")
    return User.objects.get(pk=pk).username if pk else None


def mailed_link(client: Client, slug: str, identifier: str) -> str:
    """Ask ``slug`` for a link for ``identifier``; the ``flow_token`` query of the mailed link."""
    before = len(mail.outbox)
    if not SystemSettings.objects.exclude(base_url="").exists():
        SystemSettings(base_url="https://auth.example.test").save()  # links are built on it (issue 8 item 3)
    ex = Executor(client, slug)
    assert ex.get()["component"] == "ak-stage-identification"
    assert ex.post(component="ak-stage-identification", uid_field=identifier)["component"] == "ak-stage-email"
    drain_once()  # the sender (ak worker / ak server's background sender) sends it
    assert len(mail.outbox) == before + 1, "no mail sent"
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    return "flow_token=" + link.split("flow_token=")[1]


def recovery_key(user: User) -> str:
    token = Token(identifier=f"ak-recovery-{user.pk}", intent=TokenIntents.INTENT_RECOVERY, user=user, expiring=False)
    key = token.set_key()
    token.save()
    return key


def open_key(client: Client, key: str) -> Executor:
    response = client.get(f"/recovery/use-token/?token={quote(key)}")
    assert response.status_code == 302 and response["Location"] == f"/if/flow/{RECOVERY}/", response.content[:300]
    assert logged_in_as(client) is None  # the key itself logs nobody in
    return Executor(client, RECOVERY)


def finish_password(ex: Executor, challenge: dict) -> dict:
    assert challenge["component"] == "ak-stage-prompt", challenge
    return ex.post(component="ak-stage-prompt", password=NEW_PASSWORD, password_repeat=NEW_PASSWORD)


# --- the mailed link (the default recovery flow from the blueprints) ----------------------------------------------


def test_mailed_link_asks_a_totp_user_for_the_second_factor_before_anything(default_flows, tina):
    link = mailed_link(Client(), RECOVERY, "tina@example.com")
    client = Client(REMOTE_ADDR="192.0.2.60")  # the link, opened in another browser
    ex = Executor(client, RECOVERY, link)
    mfa = ex.get()
    assert mfa["component"] == "ak-stage-authenticator-validate", mfa
    assert logged_in_as(client) is None
    failed = ex.post(component="ak-stage-authenticator-validate", code=wrong_code())
    assert failed["response_errors"]["code"] and logged_in_as(client) is None
    # the name as typed into the recovery form
    assert Event.objects.filter(action="login_failed", context__username="tina@example.com").count() == 1
    prompt = ex.post(component="ak-stage-authenticator-validate", code=code())
    done = finish_password(ex, prompt)
    assert done["component"] == "xak-flow-redirect", done
    tina.refresh_from_db()
    assert tina.check_password(NEW_PASSWORD) and logged_in_as(client) == "tina"
    assert Event.objects.get(action="login").context["auth_method"] == "auth_mfa"


def test_mailed_link_without_the_second_factor_never_changes_the_password(default_flows, tina):
    ex = Executor(Client(), RECOVERY, mailed_link(Client(), RECOVERY, "tina"))
    assert ex.get()["component"] == "ak-stage-authenticator-validate"
    answer = ex.post(component="ak-stage-prompt", password=NEW_PASSWORD, password_repeat=NEW_PASSWORD)
    assert answer["component"] == "ak-stage-authenticator-validate" and answer["response_errors"]["component"]
    tina.refresh_from_db()
    assert tina.check_password("old-password-1") and not AuthenticatedSession.objects.exists()


def test_mailed_link_for_a_user_without_second_factor_recovers_as_before(default_flows, bob):
    client = Client()
    ex = Executor(client, RECOVERY, mailed_link(Client(), RECOVERY, "bob@example.com"))
    done = finish_password(ex, ex.get())
    assert done["component"] == "xak-flow-redirect"
    assert logged_in_as(client) == "bob"
    assert Event.objects.get(action="login").context["auth_method"] == "password"


# --- ak create_recovery_key ---------------------------------------------------------------------------------------


def test_recovery_key_goes_through_the_flow_and_asks_for_the_second_factor(default_flows, tina):
    client = Client(REMOTE_ADDR="192.0.2.61")
    ex = open_key(client, recovery_key(tina))
    assert not Token.objects.filter(intent=TokenIntents.INTENT_RECOVERY).exists()  # spent
    assert Event.objects.filter(action="recovery_token_used", user__username="tina").count() == 1
    mfa = ex.get()
    assert mfa["component"] == "ak-stage-authenticator-validate" and mfa["pending_user"] == "tina", mfa
    assert logged_in_as(client) is None
    done = finish_password(ex, ex.post(component="ak-stage-authenticator-validate", code=code()))
    assert done["component"] == "xak-flow-redirect", done
    assert logged_in_as(client) == "tina"
    tina.refresh_from_db()
    assert tina.check_password(NEW_PASSWORD)
    login = Event.objects.get(action="login")
    assert login.context["auth_method"] == "auth_mfa" and login.client_ip == "192.0.2.61"


def test_recovery_key_for_a_user_without_second_factor(default_flows, bob):
    client = Client()
    ex = open_key(client, recovery_key(bob))
    done = finish_password(ex, ex.get())
    assert done["component"] == "xak-flow-redirect"
    assert logged_in_as(client) == "bob"
    assert Event.objects.get(action="login").context["auth_method"] == "token"


def test_recovery_key_from_the_command(default_flows, tina, capsys):
    call_command("create_recovery_key", "1", "tina")
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert link.startswith("/recovery/use-token/?token=")
    ex = open_key(Client(), link.split("token=", 1)[1])
    assert ex.get()["component"] == "ak-stage-authenticator-validate"


def test_recovery_key_replaces_another_signed_in_user_only_at_the_flow_login(default_flows, tina, bob):
    client = Client()
    client.force_login(bob)
    assert client.get(f"/recovery/use-token/?token={quote(recovery_key(tina))}").status_code == 302
    ex = Executor(client, RECOVERY)
    assert logged_in_as(client) == "bob"
    finish_password(ex, ex.post(component="ak-stage-authenticator-validate", code=code()))
    assert logged_in_as(client) == "tina"


def test_recovery_key_works_once_and_only_as_a_recovery_key(default_flows, tina):
    key = recovery_key(tina)
    open_key(Client(), key)
    again = Client().get(f"/recovery/use-token/?token={quote(key)}")
    assert again.status_code == 404 and b"invalid, expired or already used" in again.content
    api = Token(identifier="api", intent=TokenIntents.INTENT_API, user=tina)
    api_key = api.set_key()
    api.save()
    client = Client()
    assert client.get(f"/recovery/use-token/?token={api_key}").status_code == 404
    assert client.get("/recovery/use-token/").status_code == 404
    assert logged_in_as(client) is None and not AuthenticatedSession.objects.exists()


def test_recovery_key_without_a_recovery_flow_is_kept(db, tina):
    key = recovery_key(tina)
    response = Client().get(f"/recovery/use-token/?token={quote(key)}")
    assert response.status_code == 503 and b"apply the default blueprints" in response.content
    assert Token.objects.filter(intent=TokenIntents.INTENT_RECOVERY).exists()


def test_recovery_key_brute_force_of_the_second_factor_is_limited(default_flows, tina):
    """Item 5 on the recovery path: wrong codes are login_failed events and reach the flow's limit."""
    client = Client(REMOTE_ADDR="192.0.2.62")
    ex = open_key(client, recovery_key(tina))
    ex.get()
    failures = failures_until_throttled(
        lambda: ex.post(component="ak-stage-authenticator-validate", code=wrong_code()), "code")
    assert failures >= 1
    assert Event.objects.filter(action="login_failed", context__username="tina").count() == failures
    answer = ex.post(component="ak-stage-authenticator-validate", code=code())
    assert answer["component"] != "ak-stage-prompt" and logged_in_as(client) is None


# --- flows that do not ask: no session ----------------------------------------------------------------------------


def _recovery_flow_without_mfa(flows) -> Flow:
    prompt = fm.PromptStage.objects.create(name="rec-prompt")
    prompt.fields.add(*flows.password_prompts("rec"))
    return flows.flow("custom-recovery", "recovery", [
        fm.IdentificationStage.objects.create(name="rec-ident", user_fields=["email", "username"]),
        fm.EmailStage.objects.create(name="rec-email"), prompt,
        fm.UserWriteStage.objects.create(name="rec-write"), fm.UserLoginStage.objects.create(name="rec-login")])


def test_a_recovery_flow_that_does_not_ask_logs_no_second_factor_user_in(flows, tina, bob, caplog):
    _recovery_flow_without_mfa(flows)
    client = Client()
    ex = Executor(client, "custom-recovery", mailed_link(Client(), "custom-recovery", "tina"))
    with caplog.at_level(logging.WARNING, logger="gatehouse.flows"):
        denied = finish_password(ex, ex.get())
    assert denied["component"] == "ak-stage-access-denied" and denied["error_message"] == SECOND_FACTOR_NEEDED
    assert logged_in_as(client) is None and not AuthenticatedSession.objects.exists()
    assert any("custom-recovery" in r.getMessage() and "authenticator validation stage" in r.getMessage()
               for r in caplog.records), caplog.text
    # a user without a second factor still recovers through the same flow
    other = Client()
    ex = Executor(other, "custom-recovery", mailed_link(Client(), "custom-recovery", "bob"))
    assert finish_password(ex, ex.get())["component"] == "xak-flow-redirect"
    assert logged_in_as(other) == "bob"


def test_a_magic_link_login_needs_the_second_factor_too(flows, tina, bob):
    """An authentication flow that logs in from a mailed link: the same rule as a recovery."""
    flows.flow("magic-link", "authentication", [
        fm.IdentificationStage.objects.create(name="ml-ident", user_fields=["username"]),
        fm.EmailStage.objects.create(name="ml-email"), fm.UserLoginStage.objects.create(name="ml-login")])
    client = Client()
    denied = Executor(client, "magic-link", mailed_link(Client(), "magic-link", "tina")).get()
    assert denied["component"] == "ak-stage-access-denied" and logged_in_as(client) is None
    client = Client()
    assert Executor(client, "magic-link", mailed_link(Client(), "magic-link", "bob")).get()["component"] == \
        "xak-flow-redirect"
    assert logged_in_as(client) == "bob"
