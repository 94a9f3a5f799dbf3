"""First-start administrator: from AUTHENTIK_BOOTSTRAP_* without a person, or the initial-setup flow."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from core.accounts.models import Group, Token, TokenIntents, User

ADMIN_USERNAME = "akadmin"
ADMIN_GROUP = "authentik Admins"
BOOTSTRAP_TOKEN_IDENTIFIER = "authentik-bootstrap-token"  # noqa: S105 - an identifier
INITIAL_SETUP_PATH = "/if/flow/initial-setup/"


def admin_exists() -> bool:
    return User.objects.filter(is_active=True, groups__is_superuser=True).exists()


@transaction.atomic
def bootstrap() -> str:
    """Create or refresh akadmin and the bootstrap API token from the environment.

    Returns a one-line message for the start-up log. Idempotent: a second start changes nothing
    unless the variables changed.
    """
    boot = settings.CONFIG.bootstrap
    if not (boot.password or boot.token):
        if admin_exists():
            return "administrator present"
        return f"no administrator yet: open {INITIAL_SETUP_PATH} to create one"
    group, _ = Group.objects.get_or_create(name=ADMIN_GROUP, defaults={"is_superuser": True})
    user, created = User.objects.get_or_create(username=ADMIN_USERNAME,
                                               defaults={"name": "authentik Default Admin", "email": boot.email})
    if created:
        if boot.password:
            user.set_password(boot.password)
        else:
            user.set_unusable_password()
        user.save()
    user.groups.add(group)
    if boot.token:
        token = Token.objects.filter(identifier=BOOTSTRAP_TOKEN_IDENTIFIER).first() or Token(
            identifier=BOOTSTRAP_TOKEN_IDENTIFIER, intent=TokenIntents.INTENT_API, user=user,
            expiring=False, expires=None, description="From AUTHENTIK_BOOTSTRAP_TOKEN")
        if not token.key_hash or Token.authenticate(boot.token, (TokenIntents.INTENT_API,)) is None:
            token.set_key(boot.token)
            token.user = user
            token.save()
    return f"bootstrap: {ADMIN_USERNAME} {'created' if created else 'present'}"
