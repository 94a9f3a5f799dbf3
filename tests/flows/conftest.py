"""Flows built with the ORM (mirroring the default blueprints' shapes) and an executor client that
drives ``/api/v3/flows/executor/<slug>/`` exactly as an outpost or the login page does."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from core.accounts.models import Group, User
from core.blueprints.apply import BUILTIN_DIR, apply_file
from core.flows import models as fm

# The default blueprints' password-change, authentication and recovery flows, as `ak server` applies them.
DEFAULT_FLOWS = ("05-flow-password-change.yaml", "10-flow-default-authentication-flow.yaml",
                 "30-flow-default-recovery-flow.yaml")


class FlowFactory:
    def flow(self, slug: str, designation: str = "authentication", stages=(), **extra) -> fm.Flow:
        flow = fm.Flow.objects.create(name=slug, slug=slug, title=slug.replace("-", " ").title(),
                                      designation=designation, **extra)
        for order, stage in enumerate(stages, start=1):
            fm.FlowStageBinding.objects.create(target=flow, stage=stage, order=order * 10)
        return flow

    def authentication(self, slug="default-authentication-flow", password_in_identification=False,
                       mfa=True, **extra) -> fm.Flow:
        password = fm.PasswordStage.objects.create(
            name=f"{slug}-password", backends=["authentik.core.auth.InbuiltBackend",
                                               "authentik.core.auth.TokenBackend"])
        ident = fm.IdentificationStage.objects.create(
            name=f"{slug}-identification", user_fields=["username", "email"],
            password_stage=password if password_in_identification else None)
        stages = [ident] if password_in_identification else [ident, password]
        if mfa:
            stages.append(fm.AuthenticatorValidateStage.objects.create(
                name=f"{slug}-mfa", device_classes=["static", "totp", "webauthn"], not_configured_action="skip"))
        stages.append(fm.UserLoginStage.objects.create(name=f"{slug}-login"))
        return self.flow(slug, "authentication", stages, **extra)

    def invalidation(self, slug="default-invalidation-flow") -> fm.Flow:
        return self.flow(slug, "invalidation", [fm.UserLogoutStage.objects.create(name=f"{slug}-logout")])

    def password_prompts(self, prefix: str):
        password = fm.Prompt.objects.create(name=f"{prefix}-password", field_key="password", label="Password",
                                            type="password", order=10)
        repeat = fm.Prompt.objects.create(name=f"{prefix}-password-repeat", field_key="password_repeat",
                                          label="Password (repeat)", type="password", order=20)
        return password, repeat

    def initial_setup(self) -> fm.Flow:
        email = fm.Prompt.objects.create(name="setup-email", field_key="email", label="Email", type="email", order=0)
        prompt = fm.PromptStage.objects.create(name="setup-prompt")
        prompt.fields.add(email, *self.password_prompts("setup"))
        return self.flow("initial-setup", "stage_configuration", [
            prompt, fm.UserWriteStage.objects.create(name="setup-write", user_creation_mode="never_create"),
            fm.UserLoginStage.objects.create(name="setup-login")])


@pytest.fixture
def flows(db) -> FlowFactory:
    return FlowFactory()


@pytest.fixture
def default_flows(db) -> None:
    for name in DEFAULT_FLOWS:
        apply_file(BUILTIN_DIR / name)


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", "alice@example.com", "correct horse")


@pytest.fixture
def admin_group(db) -> Group:
    return Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})[0]


class Executor:
    """A browser-less flow client: GET the challenge, POST answers, follow 302 as GET (§1.7)."""

    def __init__(self, client: Client, slug: str, query: str = "", **headers):
        self.client = client
        self.url = f"/api/v3/flows/executor/{slug}/?{urlencode({'query': query})}"
        self.headers = headers

    def get(self) -> dict:
        response = self.client.get(self.url, **self.headers)
        assert response.status_code == 200, response.content
        return response.json()

    def post(self, **answer) -> dict:
        """The answer's JSON, after following a 302 back to the executor (None-safe)."""
        response = self.client.post(self.url, data=json.dumps(answer), content_type="application/json",
                                    **self.headers)
        if response.status_code == 302:
            assert response["Location"] == self.url
            return self.get()
        assert response.status_code == 200, response.content
        return response.json()

    def post_raw(self, **answer):
        return self.client.post(self.url, data=json.dumps(answer), content_type="application/json",
                                **self.headers)


@pytest.fixture
def executor():
    def make(slug: str, query: str = "", client: Client | None = None, **headers) -> Executor:
        return Executor(client or Client(), slug, query, **headers)
    return make


def login(executor_client: Executor, uid: str, password: str) -> dict:
    """Identification then password; returns the answer after the password."""
    challenge = executor_client.get()
    assert challenge["component"] == "ak-stage-identification"
    challenge = executor_client.post(component="ak-stage-identification", uid_field=uid)
    assert challenge["component"] == "ak-stage-password", challenge
    return executor_client.post(component="ak-stage-password", password=password)


def failures_until_throttled(attempt, field: str, bound: int = 40) -> int:
    """Call ``attempt()`` (one wrong answer, returning the flow's JSON) until the flow answers ``throttled`` on
    ``field``; the number of failures it counted before. ``bound`` attempts without a limit fail the test."""
    for failures in range(bound):
        errors = (attempt().get("response_errors") or {}).get(field) or [{}]
        if errors[0].get("code") == "throttled":
            return failures
    pytest.fail(f"{bound} wrong answers and the flow never limited them")
