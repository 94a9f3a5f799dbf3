"""Enrollment refuses user names that imitate an existing one or cannot be read (issue 8 item 11): the
prompt stage answers with a field error naming the problem, and the user-write stage refuses on its own
(a flow whose prompt asks for the name as plain text)."""

from __future__ import annotations

import pytest

from core.accounts.models import User
from core.flows import models as fm

pytestmark = pytest.mark.django_db

FLOW = "default-enrollment-flow"


def _enrollment(flows, username_type: str = "username"):
    username = fm.Prompt.objects.create(name="enroll-username", field_key="username", label="Username",
                                        type=username_type, order=0)
    email = fm.Prompt.objects.create(name="enroll-email", field_key="email", label="Email", type="email", order=1)
    prompt = fm.PromptStage.objects.create(name="enroll-prompt")
    prompt.fields.add(username, email, *flows.password_prompts("enroll"))
    flows.flow(FLOW, "enrollment", [
        prompt, fm.UserWriteStage.objects.create(name="enroll-write", user_creation_mode="always_create"),
        fm.UserLoginStage.objects.create(name="enroll-login")])


def _enroll(executor, username: str, email: str = "new@example.com") -> dict:
    ex = executor(FLOW)
    assert ex.get()["component"] == "ak-stage-prompt"
    return ex.post(component="ak-stage-prompt", username=username, email=email, password="a long password 1",
                   password_repeat="a long password 1")


@pytest.mark.parametrize("name, why", [
    ("аlice", "CYRILLIC SMALL LETTER A"),
    ("alıce", "DOTLESS I"),
    ("ａｌｉｃｅ", "write it as 'alice'"),
    ("al\u200bice", "ZERO WIDTH SPACE"),
    ("al\tice", "U+0009"),
    ("Alice", "taken"),
    ("y" * 300, "300 characters"),
    ("alice@example.com", "another user's email address"),
])
def test_prompt_refuses_lookalikes_and_unreadable_names(flows, alice, executor, name, why):
    _enrollment(flows)
    answer = _enroll(executor, name)
    assert answer["component"] == "ak-stage-prompt", answer
    errors = answer["response_errors"]["username"]
    assert why in errors[0]["string"], errors
    assert User.objects.count() == 1


def test_user_write_refuses_even_when_the_prompt_did_not_check(flows, alice, executor):
    _enrollment(flows, username_type="text")
    answer = _enroll(executor, "аlice")
    assert answer["component"] == "ak-stage-access-denied"
    assert "CYRILLIC" in answer["error_message"]
    assert User.objects.count() == 1


def test_a_fresh_name_enrolls(flows, alice, executor):
    _enrollment(flows)
    assert _enroll(executor, "carol")["component"] == "xak-flow-redirect"
    carol = User.objects.get(username="carol")
    assert carol.username_canonical == "carol"
