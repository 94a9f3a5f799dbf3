"""Users, groups, applications, providers, tokens and sessions (authentik_core).

Table names follow Django's <label>_<model> rule, so the seeds' SQL
(``SELECT username, email, is_active FROM authentik_core_user``) works unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import uuid4

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.utils import timezone

from core.accounts.launch_url import launch_url_problem
from core.accounts.usernames import canonical
from core.crypto.sealing import SealError, seal, unseal
from core.policies.models import PolicyBindingModel


class UserTypes(models.TextChoices):
    INTERNAL = "internal"
    EXTERNAL = "external"
    SERVICE_ACCOUNT = "service_account"
    INTERNAL_SERVICE_ACCOUNT = "internal_service_account"


class Group(models.Model):
    group_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    num_pk = models.PositiveIntegerField(unique=True, editable=False, null=True)
    name = models.TextField(unique=True)
    is_superuser = models.BooleanField(default=False, help_text="Members get superuser rights")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "Group"
        verbose_name_plural = "Groups"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # num_pk feeds LDAP gidNumber (gid_start_number + num_pk): small, stable, unique.
        if self.num_pk is None:
            for _ in range(5):
                self.num_pk = (Group.objects.aggregate(m=Max("num_pk"))["m"] or 1000) + 1
                try:
                    with transaction.atomic():
                        return super().save(*args, **kwargs)
                except IntegrityError:
                    if not Group.objects.filter(num_pk=self.num_pk).exclude(pk=self.pk).exists():
                        raise
                    self.num_pk = None
        return super().save(*args, **kwargs)

    def ancestors(self) -> list[Group]:
        """This group and its parents, nearest first (cycles cut)."""
        chain, seen, node = [], set(), self
        while node is not None and node.pk not in seen:
            chain.append(node)
            seen.add(node.pk)
            node = node.parent
        return chain


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, username: str, email: str = "", password: str | None = None, **extra) -> User:
        user = self.model(username=username, email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, email: str = "", password: str | None = None, **extra) -> User:
        user = self.create_user(username, email, password, **extra)
        group, _ = Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})
        user.groups.add(group)
        return user


class User(AbstractBaseUser):
    uuid = models.UUIDField(default=uuid4, unique=True, editable=False, verbose_name="UUID")
    username = models.CharField(max_length=150, unique=True)
    # What logins and rate limits compare (core/accounts/usernames.py), kept on save.
    username_canonical = models.TextField(default="", editable=False, db_index=True)
    name = models.TextField(blank=True, default="")
    email = models.EmailField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    type = models.TextField(choices=UserTypes.choices, default=UserTypes.INTERNAL)
    path = models.TextField(default="users")
    attributes = models.JSONField(default=dict, blank=True)
    groups = models.ManyToManyField(Group, related_name="users", blank=True)
    date_joined = models.DateTimeField(default=timezone.now)
    password_change_date = models.DateTimeField(default=timezone.now)
    last_updated = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = "User"
        verbose_name_plural = "Users"
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    def save(self, *args, **kwargs):
        self.username_canonical = canonical(self.username)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_canonical"}
        return super().save(*args, **kwargs)

    @property
    def uid(self) -> str:
        """Stable, opaque user id: the OIDC ``sub`` and X-authentik-uid by default."""
        return hashlib.sha256(f"{self.uuid}".encode()).hexdigest()

    def all_groups(self) -> list[Group]:
        """Direct groups and every ancestor, each once.

        Cached on this instance (an instance lives for one request): the admin asks is_superuser
        hundreds of times per page. ``forget_groups()`` drops the cache; membership changes through
        ``user.groups`` do so automatically (see the m2m_changed receiver below).
        """
        cached = self.__dict__.get("_all_groups")
        if cached is not None:
            return cached
        seen: dict = {}
        for group in self.groups.select_related("parent").all():
            for g in group.ancestors():
                seen.setdefault(g.pk, g)
        self.__dict__["_all_groups"] = list(seen.values())
        return self.__dict__["_all_groups"]

    def forget_groups(self) -> None:
        self.__dict__.pop("_all_groups", None)

    def refresh_from_db(self, *args, **kwargs):
        self.forget_groups()
        return super().refresh_from_db(*args, **kwargs)

    @property
    def is_superuser(self) -> bool:
        return self.is_active and any(g.is_superuser for g in self.all_groups())

    @property
    def is_staff(self) -> bool:  # Django admin
        return self.is_superuser

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_superuser

    def has_perms(self, perms, obj=None) -> bool:
        return self.is_superuser

    def has_module_perms(self, app_label) -> bool:
        return self.is_superuser

    def group_attributes(self) -> dict:
        """Group attributes (outermost parent first) overlaid with the user's own."""
        merged: dict = {}
        for group in reversed(self.all_groups()):
            merged.update(group.attributes or {})
        merged.update(self.attributes or {})
        return merged

    def app_entitlements(self, application) -> list:
        """authentik's per-application entitlements; Gatehouse has none yet, so the scope yields []."""
        return []

    def set_password(self, raw_password, signal=True):
        super().set_password(raw_password)
        self.password_change_date = timezone.now()


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="user-groups-cache")
def _forget_cached_groups(sender, instance, **kwargs):
    if isinstance(instance, User):
        instance.forget_groups()


class Provider(models.Model):
    """Base of every provider kind (OAuth2, proxy, LDAP, RADIUS)."""

    name = models.TextField(unique=True)
    authorization_flow = models.ForeignKey("authentik_flows.Flow", null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="provider_authorization")
    authentication_flow = models.ForeignKey("authentik_flows.Flow", null=True, blank=True,
                                            on_delete=models.SET_NULL, related_name="provider_authentication")
    invalidation_flow = models.ForeignKey("authentik_flows.Flow", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="provider_invalidation")
    property_mappings = models.ManyToManyField("PropertyMapping", blank=True)

    class Meta:
        verbose_name = "Provider"
        verbose_name_plural = "Providers"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def component(self) -> str:
        from core.inheritance import concrete

        return type(concrete(self))._meta.model_name


class PropertyMapping(models.Model):
    pm_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    expression = models.TextField(default="return {}")
    managed = models.TextField(null=True, blank=True, unique=True, default=None)

    def __str__(self) -> str:
        return self.name

    class Meta:
        verbose_name = "Property Mapping"
        verbose_name_plural = "Property Mappings"


class Application(PolicyBindingModel):
    name = models.TextField()
    slug = models.SlugField(unique=True)
    group = models.TextField(blank=True, default="")
    provider = models.OneToOneField(Provider, null=True, blank=True, default=None, on_delete=models.SET_NULL,
                                    related_name="application")
    backchannel_providers = models.ManyToManyField(Provider, blank=True, related_name="backchannel_application")
    meta_launch_url = models.TextField(blank=True, default="", verbose_name="Launch URL")  # authentik's names
    meta_description = models.TextField(blank=True, default="", verbose_name="Description")
    meta_publisher = models.TextField(blank=True, default="", verbose_name="Publisher")
    meta_icon = models.TextField(blank=True, default="", verbose_name="Icon")
    open_in_new_tab = models.BooleanField(default=False)

    class Meta:
        verbose_name = "Application"
        verbose_name_plural = "Applications"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        """The admin's form and the blueprint importer (full_clean) refuse script launch URLs."""
        problem = launch_url_problem(self.meta_launch_url)
        if problem:
            raise ValidationError({"meta_launch_url": problem})


class TokenIntents(models.TextChoices):
    INTENT_VERIFICATION = "verification", "Intent Verification"  # authentik's labels
    INTENT_API = "api", "Intent API"
    INTENT_RECOVERY = "recovery", "Intent Recovery"
    INTENT_APP_PASSWORD = "app_password", "Intent App Password"  # noqa: S105 - a name, not a secret
    # Gatehouse's own (authentik has no such intent): a "network password" for RADIUS CHAP / MS-CHAP(v2)
    # (core/providers/radius/challenge.py). Only the RADIUS core checks it: never an API token, never an app
    # password on a flow's password stage. Its key is shown once, at creation (view_key refuses it).
    INTENT_RADIUS = "radius", "Network Password (RADIUS)"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


KEY_SEAL_PURPOSE = "token-key"


def default_token_expiry():
    return timezone.now() + timezone.timedelta(minutes=30)


class TokenKeyUnreadable(Exception):
    """Why ``Token.read_key()`` cannot give the key back (``reason`` is one of the constants)."""

    NOT_KEPT = "not_kept"  # made before keys were kept: only the hash exists
    SECRET_KEY_CHANGED = "secret_key_changed"  # noqa: S105 - a reason; sealed under another secret key

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class Token(models.Model):
    """An API token, app password or recovery key.

    Authentication looks the key up by sha256(key) only (one indexed equality, no per-key work, no
    timing difference between near and far misses). To show the key again (``view_key``, as
    authentik does), it is also kept sealed with AUTHENTIK_SECRET_KEY (core/crypto/sealing.py),
    bound to the row's uuid. Managed tokens (an outpost's) have a key derived from SECRET_KEY and a
    per-token salt; tokens made before keys were kept have neither and cannot be shown again.
    """

    token_uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    identifier = models.SlugField(max_length=255, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    key_salt = models.CharField(max_length=64, blank=True, default="")
    key_sealed = models.TextField(blank=True, default="", help_text="the key sealed with AUTHENTIK_SECRET_KEY "
                                  "(core/crypto/sealing.py), for view_key; empty on tokens made before keys were kept")
    intent = models.TextField(choices=TokenIntents.choices, default=TokenIntents.INTENT_VERIFICATION)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tokens")
    description = models.TextField(blank=True, default="")
    expires = models.DateTimeField(null=True, blank=True, default=default_token_expiry)
    expiring = models.BooleanField(default=True)
    managed = models.TextField(null=True, blank=True, unique=True, default=None)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "Token"
        verbose_name_plural = "Tokens"
        ordering = ["identifier"]

    def __str__(self) -> str:
        return self.identifier

    @staticmethod
    def derive_key(identifier: str, salt: str) -> str:
        return hmac.new(settings.SECRET_KEY.encode(), f"{identifier}:{salt}".encode(), "sha256").hexdigest()[:48]

    def set_key(self, key: str | None = None) -> str:
        """Give the token a key (a new random one by default) and return it."""
        if key is None:
            key = secrets.token_urlsafe(48)
        self.key_hash = hash_key(key)
        # Sealed (AES-GCM under a key derived from SECRET_KEY), not only hashed: view_key shows API tokens and
        # app passwords again, and a network password (intent radius) must be readable by the core because
        # CHAP and MS-CHAP(v2) verify a proof computed from the cleartext (RFC 1994, RFC 2759): a hash like
        # key_hash cannot check one. The clear key is never logged nor stored anywhere else.
        self.key_sealed = seal(key, secret=settings.SECRET_KEY, purpose=KEY_SEAL_PURPOSE, context=str(self.token_uuid))
        return key

    def set_derived_key(self) -> str:
        self.key_salt = secrets.token_hex(16)
        return self.set_key(self.derive_key(self.identifier, self.key_salt))

    @property
    def readable_key(self) -> str | None:
        """The key of a derived (managed, outpost) token; None for any other."""
        if not self.key_salt:
            return None
        return self.derive_key(self.identifier, self.key_salt)

    def read_key(self) -> str:
        """The key again (``view_key``), never one the core would refuse: raises TokenKeyUnreadable."""
        if self.key_sealed:
            try:
                key = unseal(self.key_sealed, secret=settings.SECRET_KEY, purpose=KEY_SEAL_PURPOSE,
                             context=str(self.token_uuid))
            except SealError:
                raise TokenKeyUnreadable(TokenKeyUnreadable.SECRET_KEY_CHANGED) from None
        elif self.key_salt:
            key = self.derive_key(self.identifier, self.key_salt)
        else:
            raise TokenKeyUnreadable(TokenKeyUnreadable.NOT_KEPT)
        if not secrets.compare_digest(hash_key(key), self.key_hash):
            raise TokenKeyUnreadable(TokenKeyUnreadable.SECRET_KEY_CHANGED)
        return key

    @property
    def is_expired(self) -> bool:
        return bool(self.expiring and self.expires and self.expires < timezone.now())

    @classmethod
    def authenticate(cls, key: str, intents: tuple[str, ...]) -> Token | None:
        """The live token with this key and one of ``intents``, for an active user; else None."""
        if not key or len(key) > 512:
            return None
        token = cls.objects.select_related("user").filter(key_hash=hash_key(key), intent__in=intents).first()
        if token is None or token.is_expired or not token.user.is_active:
            return None
        return token


class AuthenticatedSession(models.Model):
    """A logged-in browser session; deleting the row ends the session everywhere (outposts included)."""

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    session_key = models.CharField(max_length=64, unique=True)
    sid = models.CharField(max_length=64, unique=True, help_text="sha256(session_key): OIDC sid, outpost session_id",
                           verbose_name="SID")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sessions")
    last_ip = models.GenericIPAddressField(null=True, blank=True, verbose_name="Last IP")
    last_user_agent = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(auto_now=True)
    expires = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} from {self.last_ip or 'an unknown address'}"

    class Meta:
        verbose_name = "Authenticated Session"
        verbose_name_plural = "Authenticated Sessions"
        ordering = ["-last_used"]

    @staticmethod
    def hash_session_key(session_key: str) -> str:
        return hashlib.sha256(session_key.encode()).hexdigest()

    def save(self, *args, **kwargs):
        self.sid = self.hash_session_key(self.session_key)
        return super().save(*args, **kwargs)
