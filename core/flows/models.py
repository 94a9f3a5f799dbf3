"""Flows, stages, their bindings, and the per-user authenticator devices (authentik_flows).

authentik spreads stages over one Django app each (authentik_stages_password, ...); Gatehouse keeps
them in this app and the blueprint importer maps authentik's model names onto these classes.
"""

from __future__ import annotations

from uuid import uuid4

from django.conf import settings
from django.db import models

from core.policies.models import PolicyBindingModel


class FlowDesignation(models.TextChoices):
    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    INVALIDATION = "invalidation"
    ENROLLMENT = "enrollment"
    UNRENOLLMENT = "unenrollment", "Unenrollment"  # authentik's member name, spelled so; not its label
    RECOVERY = "recovery"
    STAGE_CONFIGURATION = "stage_configuration"


class FlowAuthenticationRequirement(models.TextChoices):  # the labels are authentik's flow form's
    NONE = "none", "No requirement"
    REQUIRE_AUTHENTICATED = "require_authenticated", "Require authentication"
    REQUIRE_UNAUTHENTICATED = "require_unauthenticated", "Require no authentication"
    REQUIRE_SUPERUSER = "require_superuser", "Require superuser"
    REQUIRE_REDIRECT = "require_redirect", "Require being redirected from another flow"
    REQUIRE_OUTPOST = "require_outpost", "Require Outpost (flow can only be executed from an outpost)"


class FlowDeniedAction(models.TextChoices):
    MESSAGE_CONTINUE = "message_continue", "MESSAGE_CONTINUE: will follow the ?next parameter if set, otherwise show a message"
    MESSAGE = "message", "MESSAGE: will notify the user the flow isn't applicable"
    CONTINUE = "continue", "CONTINUE: will either follow the ?next parameter or redirect to the default interface"


class InvalidResponseAction(models.TextChoices):
    RETRY = "retry", "RETRY: returns the error message and a similar challenge to the executor"
    RESTART = "restart", "RESTART: restarts the flow from the beginning"
    RESTART_WITH_CONTEXT = "restart_with_context", ("RESTART_WITH_CONTEXT: restarts the flow from the beginning, "
                                                    "while keeping the flow context")


class Flow(PolicyBindingModel):
    name = models.TextField()
    slug = models.SlugField(unique=True)
    title = models.TextField(blank=True, default="")
    designation = models.CharField(max_length=100, choices=FlowDesignation.choices)
    authentication = models.TextField(choices=FlowAuthenticationRequirement.choices,
                                      default=FlowAuthenticationRequirement.NONE)
    denied_action = models.TextField(choices=FlowDeniedAction.choices, default=FlowDeniedAction.MESSAGE_CONTINUE)
    layout = models.TextField(default="stacked")
    background = models.TextField(blank=True, default="")
    compatibility_mode = models.BooleanField(default=False)
    stages = models.ManyToManyField("Stage", through="FlowStageBinding", blank=True)

    class Meta:
        verbose_name = "Flow"
        verbose_name_plural = "Flows"
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def flow_uuid(self):
        return self.pbm_uuid


class Stage(models.Model):
    """Base of every stage kind (multi-table inheritance)."""

    stage_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)

    def __str__(self) -> str:
        return self.name


class FlowStageBinding(PolicyBindingModel):
    target = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="bindings_set")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="flow_bindings")
    order = models.IntegerField()
    evaluate_on_plan = models.BooleanField(default=False)
    re_evaluate_policies = models.BooleanField(default=True, verbose_name="Re-evaluate policies")
    invalid_response_action = models.TextField(choices=InvalidResponseAction.choices,
                                               default=InvalidResponseAction.RETRY)

    def __str__(self) -> str:
        return f"{self.target} #{self.order}: {self.stage}"

    class Meta:
        ordering = ["target", "order"]
        unique_together = (("target", "stage", "order"),)

    @property
    def fsb_uuid(self):
        return self.pbm_uuid


# --- stage kinds -----------------------------------------------------------------------------


class IdentificationStage(Stage):
    user_fields = models.JSONField(default=list, blank=True, help_text="any of username, email, upn")
    password_stage = models.ForeignKey("PasswordStage", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    case_insensitive_matching = models.BooleanField(default=True)
    show_matched_user = models.BooleanField(default=True)
    pretend_user_exists = models.BooleanField(default=True)
    enrollment_flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recovery_flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    passwordless_flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    show_source_labels = models.BooleanField(default=False)
    enable_remember_me = models.BooleanField(default=False)

    class Meta:
        verbose_name = "Identification Stage"
        verbose_name_plural = "Identification Stages"


class PasswordStage(Stage):
    backends = models.JSONField(default=list, blank=True)
    configure_flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    failed_attempts_before_cancel = models.IntegerField(default=5)
    allow_show_password = models.BooleanField(default=False)

    class Meta:
        verbose_name = "Password Stage"
        verbose_name_plural = "Password Stages"


class AuthenticatorValidateStage(Stage):
    device_classes = models.JSONField(default=list, blank=True, help_text="static, totp, webauthn")
    not_configured_action = models.TextField(default="skip", help_text="skip, deny or configure")
    configuration_stages = models.ManyToManyField(Stage, blank=True, related_name="+")
    last_auth_threshold = models.TextField(default="seconds=0")
    webauthn_user_verification = models.TextField(default="preferred", verbose_name="WebAuthn user verification")

    class Meta:
        verbose_name = "Authenticator Validation Stage"
        verbose_name_plural = "Authenticator Validation Stages"


class AuthenticatorTOTPStage(Stage):
    digits = models.IntegerField(default=6)
    friendly_name = models.TextField(blank=True, default="")
    configure_flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "TOTP Authenticator Setup Stage"
        verbose_name_plural = "TOTP Authenticator Setup Stages"


class AuthenticatorStaticStage(Stage):
    token_count = models.PositiveIntegerField(default=6)
    token_length = models.PositiveIntegerField(default=12)
    friendly_name = models.TextField(blank=True, default="")
    configure_flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "Static Authenticator Setup Stage"
        verbose_name_plural = "Static Authenticator Setup Stages"


class AuthenticatorWebAuthnStage(Stage):
    user_verification = models.TextField(default="preferred")
    resident_key_requirement = models.TextField(default="preferred")
    authenticator_attachment = models.TextField(null=True, blank=True)
    friendly_name = models.TextField(blank=True, default="")
    configure_flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "WebAuthn Authenticator Setup Stage"
        verbose_name_plural = "WebAuthn Authenticator Setup Stages"


class Prompt(models.Model):
    prompt_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    field_key = models.TextField()
    label = models.TextField(blank=True, default="")
    type = models.TextField(default="text")
    required = models.BooleanField(default=True)
    placeholder = models.TextField(blank=True, default="")
    initial_value = models.TextField(blank=True, default="")
    sub_text = models.TextField(blank=True, default="")
    order = models.IntegerField(default=0)
    placeholder_expression = models.BooleanField(default=False)
    initial_value_expression = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name

    class Meta:
        verbose_name = "Prompt"
        verbose_name_plural = "Prompts"
        ordering = ["order"]


class PromptStage(Stage):
    fields = models.ManyToManyField(Prompt, blank=True)
    validation_policies = models.ManyToManyField("authentik_policies.Policy", blank=True)

    class Meta:
        verbose_name = "Prompt Stage"
        verbose_name_plural = "Prompt Stages"


class UserWriteStage(Stage):
    user_creation_mode = models.TextField(default="create_when_required")
    create_users_as_inactive = models.BooleanField(default=False)
    create_users_group = models.ForeignKey("authentik_core.Group", null=True, blank=True,
                                           on_delete=models.SET_NULL, related_name="+")
    user_type = models.TextField(default="external")
    user_path_template = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "User Write Stage"
        verbose_name_plural = "User Write Stages"


class UserLoginStage(Stage):
    session_duration = models.TextField(default="seconds=0", help_text="0: the configured session lifetime")
    remember_me_offset = models.TextField(default="seconds=0")
    terminate_other_sessions = models.BooleanField(default=False)

    class Meta:
        verbose_name = "User Login Stage"
        verbose_name_plural = "User Login Stages"


class UserLogoutStage(Stage):
    pass

    class Meta:
        verbose_name = "User Logout Stage"
        verbose_name_plural = "User Logout Stages"


class ConsentStage(Stage):
    mode = models.TextField(default="always_require", help_text="always_require, permanent, expiring")
    consent_expire_in = models.TextField(default="weeks=4")

    class Meta:
        verbose_name = "Consent Stage"
        verbose_name_plural = "Consent Stages"


class DenyStage(Stage):
    deny_message = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "Deny Stage"
        verbose_name_plural = "Deny Stages"


class EmailStage(Stage):
    use_global_settings = models.BooleanField(default=True)
    subject = models.TextField(default="authentik")
    template = models.TextField(default="email/password_reset.html")
    token_expiry = models.TextField(default="minutes=30")
    activate_user_on_success = models.BooleanField(default=False)

    class Meta:
        verbose_name = "Email Stage"
        verbose_name_plural = "Email Stages"


# --- per-user state that stages keep --------------------------------------------------------------


class TOTPDevice(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_devices")
    name = models.TextField(default="TOTP device")
    key = models.TextField(help_text="base32 secret")
    digits = models.PositiveSmallIntegerField(default=6)
    period = models.PositiveSmallIntegerField(default=30)
    confirmed = models.BooleanField(default=False)
    last_t = models.BigIntegerField(default=-1, help_text="last accepted time step; codes are single-use",
                                    verbose_name="Last time step")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"

    class Meta:
        verbose_name = "TOTP Device"
        verbose_name_plural = "TOTP Devices"


class StaticDevice(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="static_devices")
    name = models.TextField(default="Static tokens")
    confirmed = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"

    class Meta:
        verbose_name = "Static Device"
        verbose_name_plural = "Static Devices"


class StaticToken(models.Model):
    device = models.ForeignKey(StaticDevice, on_delete=models.CASCADE, related_name="token_set")
    token = models.CharField(max_length=64, db_index=True)


class WebAuthnDevice(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webauthn_devices")
    name = models.TextField(default="Security key")
    credential_id = models.TextField(unique=True, verbose_name="Credential ID")
    public_key = models.TextField()
    sign_count = models.BigIntegerField(default=0)
    rp_id = models.TextField(verbose_name="Relying party ID")
    confirmed = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"

    class Meta:
        verbose_name = "WebAuthn Device"
        verbose_name_plural = "WebAuthn Devices"


class UserConsent(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    application = models.ForeignKey("authentik_core.Application", on_delete=models.CASCADE)
    permissions = models.TextField(blank=True, default="")
    expires = models.DateTimeField(null=True, blank=True)

    class Meta:
        unique_together = (("user", "application", "permissions"),)


class FlowToken(models.Model):
    """A saved flow plan that a link (the email stage's) resumes once; only sha256(key) is stored."""

    key_hash = models.CharField(max_length=64, unique=True)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    plan = models.JSONField(default=dict)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    expires = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)
