"""Policies and their bindings (authentik_policies).

A PolicyBindingModel is anything policies can be bound to: applications, flows, flow-stage bindings.
A binding names exactly one of a policy, a group or a user; results combine per policy_engine_mode.
"""

from uuid import uuid4

from django.conf import settings
from django.db import models
from django.utils import timezone


class PolicyEngineMode(models.TextChoices):
    MODE_ALL = "all", "all: all policies must match to grant access"  # as authentik's forms say
    MODE_ANY = "any", "any: any policy must match to grant access"


class PolicyBindingModel(models.Model):
    pbm_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    policy_engine_mode = models.TextField(choices=PolicyEngineMode.choices, default=PolicyEngineMode.MODE_ANY)

    class Meta:
        verbose_name = "Policy binding model"


class Policy(models.Model):
    """Base of every policy kind (multi-table inheritance; see subclasses below)."""

    policy_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    execution_logging = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    last_updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class PolicyBinding(models.Model):
    policy_binding_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    enabled = models.BooleanField(default=True)
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, null=True, blank=True, related_name="bindings")
    group = models.ForeignKey("authentik_core.Group", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="policy_bindings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="policy_bindings")
    target = models.ForeignKey(PolicyBindingModel, on_delete=models.CASCADE, related_name="bindings")
    negate = models.BooleanField(default=False)
    timeout = models.PositiveIntegerField(default=30)
    failure_result = models.BooleanField(default=False)
    order = models.IntegerField(default=0)

    class Meta:
        verbose_name = "Policy Binding"
        verbose_name_plural = "Policy Bindings"
        ordering = ["order", "pk"]
        constraints = [
            models.CheckConstraint(
                name="policybinding_exactly_one_subject",
                condition=(
                    models.Q(policy__isnull=False, group__isnull=True, user__isnull=True)
                    | models.Q(policy__isnull=True, group__isnull=False, user__isnull=True)
                    | models.Q(policy__isnull=True, group__isnull=True, user__isnull=False)
                ),
            )
        ]

    def __str__(self) -> str:
        subject = self.policy or self.group or self.user
        return f"binding {self.order} {subject} -> {self.target_id}"


class ExpressionPolicy(Policy):
    """Python authored by administrators, evaluated with a restricted set of names."""

    expression = models.TextField()

    class Meta:
        verbose_name = "Expression Policy"
        verbose_name_plural = "Expression Policies"


class PasswordPolicy(Policy):
    password_field = models.TextField(default="password")
    amount_digits = models.PositiveIntegerField(default=0)
    amount_uppercase = models.PositiveIntegerField(default=0)
    amount_lowercase = models.PositiveIntegerField(default=0)
    amount_symbols = models.PositiveIntegerField(default=0)
    length_min = models.PositiveIntegerField(default=0)
    symbol_charset = models.TextField(default=r"!\"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ ")
    error_message = models.TextField(blank=True, default="")
    check_static_rules = models.BooleanField(default=True)

    class Meta:
        verbose_name = "Password Policy"
        verbose_name_plural = "Password Policies"


class ReputationPolicy(Policy):
    check_ip = models.BooleanField(default=True, verbose_name="Check IP")
    check_username = models.BooleanField(default=True)
    threshold = models.IntegerField(default=-5)

    class Meta:
        verbose_name = "Reputation Policy"
        verbose_name_plural = "Reputation Policies"


class Reputation(models.Model):
    """Score per (client address, canonical username); failed logins lower it."""

    reputation_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    identifier = models.TextField()
    ip = models.GenericIPAddressField(verbose_name="IP")
    score = models.BigIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)
    last_success = models.DateTimeField(null=True, blank=True)  # a login of this name from this address

    def __str__(self) -> str:
        return f"{self.identifier} from {self.ip}"

    class Meta:
        verbose_name = "Reputation Score"
        verbose_name_plural = "Reputation Scores"
        unique_together = (("identifier", "ip"),)


class LoginFailure(models.Model):
    """One failed login attempt, for the login rate limit (THREATS 13; core/policies/reputation.py).

    ``identifier`` is the canonical name, ``ip`` the counted address, ``peer`` the proxy or outpost that
    vouched for that address (null when it was the socket peer). A ``pending`` row is an attempt reserved
    before its password was checked: it counts as a failure until the attempt succeeds and removes it.
    """

    identifier = models.TextField(db_index=True)
    ip = models.GenericIPAddressField(db_index=True)
    peer = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    pending = models.BooleanField(default=False)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at"]
