"""The built-in blueprints and start-up application (core.blueprints.apply)."""

import dataclasses

import pytest

from core.accounts.models import Group
from core.blueprints.apply import BUILTIN_DIR, apply_file, apply_startup_blueprints, builtin_files
from core.blueprints.models import BlueprintInstance
from core.blueprints.tags import BlueprintError
from core.flows.models import (
    AuthenticatorValidateStage,
    ConsentStage,
    Flow,
    FlowStageBinding,
    IdentificationStage,
    PromptStage,
    UserWriteStage,
)
from core.inheritance import concrete
from core.oidc.models import ScopeMapping
from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost
from tests.blueprints.conftest import watch_signals

pytestmark = pytest.mark.django_db

FLOWS = {
    "default-authentication-flow": ("authentication", ["default-authentication-identification",
                                                       "default-authentication-password",
                                                       "default-authentication-mfa-validation",
                                                       "default-authentication-login"]),
    "default-invalidation-flow": ("invalidation", ["default-invalidation-logout"]),
    "default-provider-invalidation-flow": ("invalidation", []),
    "default-provider-authorization-implicit-consent": ("authorization", []),
    "default-provider-authorization-explicit-consent": ("authorization", ["default-provider-authorization-consent"]),
    "default-enrollment-flow": ("enrollment", ["default-enrollment-prompt", "default-enrollment-user-write",
                                               "default-enrollment-user-login"]),
    "default-recovery-flow": ("recovery", ["default-recovery-identification", "default-recovery-email",
                                           "default-recovery-mfa-validation", "Change your password",
                                           "default-recovery-user-write", "default-recovery-user-login"]),
    "default-authenticator-totp-setup": ("stage_configuration", ["default-authenticator-totp-setup"]),
    "default-authenticator-static-setup": ("stage_configuration", ["default-authenticator-static-setup"]),
    "default-authenticator-webauthn-setup": ("stage_configuration", ["default-authenticator-webauthn-setup"]),
    "default-password-change": ("stage_configuration", ["default-password-change-prompt",
                                                        "default-password-change-write"]),
    "initial-setup": ("stage_configuration", ["stage-default-oobe-password", "initial-setup-write",
                                              "default-authentication-login"]),
}


def row_counts() -> dict:
    from django.apps import apps

    return {m._meta.label: m.objects.count() for m in apps.get_models()
            if m._meta.app_label.startswith("authentik_") and m._meta.app_label != "authentik_blueprints"}


@pytest.fixture
def no_user_dir(settings, tmp_path):
    settings.CONFIG = dataclasses.replace(settings.CONFIG, blueprints_dir=tmp_path / "absent")


def test_builtins_apply_on_an_empty_database_and_again_as_a_no_op(no_user_dir):
    lines = apply_startup_blueprints()
    assert len(lines) == len(builtin_files()) >= 15
    assert all(": successful:" in line for line in lines), lines
    counts = row_counts()
    for path in builtin_files():  # forced re-application (no hash skip) changes nothing either
        with watch_signals() as fired:
            outcome = apply_file(path)
        # Only the BlueprintInstance record (last applied time) is written.
        assert [f for f in fired if f[1] != "BlueprintInstance"] == [], (path.name, fired)
        assert "created" not in outcome.detail and "updated" not in outcome.detail, outcome.line()
    assert row_counts() == counts


@pytest.mark.parametrize("slug", sorted(FLOWS))
def test_default_flows_have_authentiks_slugs_and_stages(no_user_dir, slug):
    apply_startup_blueprints()
    flow = Flow.objects.get(slug=slug)
    designation, stages = FLOWS[slug]
    assert flow.designation == designation
    bindings = FlowStageBinding.objects.filter(target=flow).order_by("order").select_related("stage")
    assert [b.stage.name for b in bindings] == stages


def test_default_stage_settings(no_user_dir):
    apply_startup_blueprints()
    ident = IdentificationStage.objects.get(name="default-authentication-identification")
    assert ident.user_fields == ["username", "email"]
    assert ident.enrollment_flow is None and ident.recovery_flow is None  # opt-in, not linked by default
    mfa = AuthenticatorValidateStage.objects.get(name="default-authentication-mfa-validation")
    assert (mfa.not_configured_action, mfa.device_classes) == ("skip", ["static", "totp", "webauthn"])
    assert ConsentStage.objects.get(name="default-provider-authorization-consent").mode == "expiring"
    enrollment = PromptStage.objects.get(name="default-enrollment-prompt")
    assert sorted(enrollment.fields.values_list("field_key", flat=True)) == [
        "email", "name", "password", "password_repeat", "username"]
    setup = PromptStage.objects.get(name="stage-default-oobe-password")
    assert sorted(setup.fields.exclude(type="static").values_list("field_key", flat=True)) == [
        "email", "password", "password_repeat"]
    write = UserWriteStage.objects.get(name="initial-setup-write")
    assert write.create_users_group.name == "authentik Admins" and write.create_users_group.is_superuser
    assert Group.objects.get(name="authentik Admins").is_superuser
    assert Flow.objects.get(slug="default-enrollment-flow").bindings.get().policy.name == "default-enrollment-flow-disabled"


def test_embedded_outpost_and_scope_mappings(no_user_dir):
    apply_startup_blueprints()
    outpost = Outpost.objects.get(managed=EMBEDDED_OUTPOST_MANAGED)
    assert (outpost.name, outpost.type, outpost.config["authentik_host"]) == ("authentik Embedded Outpost", "proxy", "")
    scopes = {m.managed: m for m in ScopeMapping.objects.all()}
    prefix = "goauthentik.io/providers/oauth2/scope-"
    for name in ("openid", "email", "profile", "offline_access", "entitlements"):
        assert scopes[prefix + name].scope_name == name
    profile = scopes[prefix + "profile"].expression
    for claim in ("name", "given_name", "preferred_username", "nickname", "groups"):
        assert f'"{claim}"' in profile
    assert "request.user.all_groups()" in profile
    proxy = scopes["goauthentik.io/providers/proxy/scope-proxy"]
    assert proxy.scope_name == "ak_proxy" and "user_attributes" in proxy.expression


def test_embedded_outpost_keeps_administrator_changes(no_user_dir):
    apply_startup_blueprints()
    outpost = Outpost.objects.get(managed=EMBEDDED_OUTPOST_MANAGED)
    outpost.config = {**outpost.config, "authentik_host": "https://sso.example.com"}
    outpost.save()
    apply_file(BUILTIN_DIR / "00-system-embedded-outpost.yaml")
    assert Outpost.objects.get(pk=outpost.pk).config["authentik_host"] == "https://sso.example.com"


def test_startup_skips_unchanged_files_and_applies_user_dir(settings, tmp_path):
    user_dir = tmp_path / "blueprints"
    (user_dir / "sub").mkdir(parents=True)
    settings.CONFIG = dataclasses.replace(settings.CONFIG, blueprints_dir=user_dir)
    mine = user_dir / "sub" / "mine.yaml"
    mine.write_text("version: 1\nmetadata: {name: Mine}\nentries:\n  - {model: authentik_core.group, identifiers: {name: mine}}\n")
    first = apply_startup_blueprints()
    assert first[-1] == f"blueprint {mine} (Mine): successful: 1 created"
    instance = BlueprintInstance.objects.get(path=str(mine))
    assert (instance.name, instance.status) == ("Mine", "successful") and len(instance.last_applied_hash) == 64

    Group.objects.filter(name="mine").delete()  # unchanged file: skipped, so not re-created
    with watch_signals() as fired:
        second = apply_startup_blueprints()
    assert fired == []
    assert all(line.endswith(": unchanged") for line in second), second

    mine.write_text(mine.read_text() + "  - {model: authentik_core.group, identifiers: {name: mine2}}\n")
    third = apply_startup_blueprints()
    assert third[-1].endswith("successful: 2 created") and all(": unchanged" in x for x in third[:-1])


def test_startup_reports_a_broken_file_and_applies_the_rest(settings, tmp_path):
    settings.CONFIG = dataclasses.replace(settings.CONFIG, blueprints_dir=tmp_path)
    (tmp_path / "a-broken.yaml").write_text(
        "version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {name: half}}\n"
        "  - {model: authentik_core.nothing, identifiers: {name: x}}\n")
    (tmp_path / "b-fine.yaml").write_text("version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {name: fine}}\n")
    (tmp_path / "c-template.yaml").write_text(
        "version: 1\nmetadata: {name: T, labels: {blueprints.goauthentik.io/instantiate: 'false'}}\n"
        "entries:\n  - {model: authentik_core.group, identifiers: {name: template}}\n")
    lines = apply_startup_blueprints()
    broken = next(line for line in lines if "a-broken" in line)
    assert "error:" in broken and "entry 1 (authentik_core.nothing" in broken and "unknown model" in broken
    assert not Group.objects.filter(name="half").exists() and Group.objects.filter(name="fine").exists()
    assert not Group.objects.filter(name="template").exists()
    assert BlueprintInstance.objects.get(path=str(tmp_path / "a-broken.yaml")).status == "error"
    again = apply_startup_blueprints()
    assert "error:" in next(line for line in again if "a-broken" in line)  # retried, not skipped
    assert next(line for line in again if "c-template" in line).endswith("unchanged")


def test_apply_file_errors_name_the_file(tmp_path):
    with pytest.raises(BlueprintError, match="cannot read the file"):
        apply_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {name: g}, attrs: {nope: 1}}\n")
    with pytest.raises(BlueprintError, match=rf"^{bad}: entry 0 \(authentik_core.group, identifiers {{'name': 'g'}}\): field 'nope'"):
        apply_file(bad)


def test_two_files_with_the_same_name_get_distinct_records(tmp_path):
    for n in ("one", "two"):
        (tmp_path / f"{n}.yaml").write_text(f"version: 1\nmetadata: {{name: Same}}\nentries:\n  - {{model: authentik_core.group, identifiers: {{name: {n}}}}}\n")
        apply_file(tmp_path / f"{n}.yaml")
    assert BlueprintInstance.objects.filter(name__startswith="Same").count() == 2


def test_concrete_stage_types(no_user_dir):
    apply_startup_blueprints()
    flow = Flow.objects.get(slug="default-authentication-flow")
    kinds = [type(concrete(b.stage)).__name__ for b in FlowStageBinding.objects.filter(target=flow).order_by("order")]
    assert kinds == ["IdentificationStage", "PasswordStage", "AuthenticatorValidateStage", "UserLoginStage"]
