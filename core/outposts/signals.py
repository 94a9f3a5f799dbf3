"""What tells outposts to refetch or to end a session (reference §1.3; DESIGN §2 "Outpost link").

* An outpost (save, delete, its providers) -> TRIGGER_UPDATE to that outpost.
* A provider of any kind (save) -> TRIGGER_UPDATE to the outposts serving it; deleted -> every outpost
  (its outpost links are already gone when post_delete runs).
* Everything else an outpost's snapshot is computed from -> TRIGGER_UPDATE to every outpost: applications
  (a provider can move between applications), policies and policy bindings, users, groups and
  memberships (the proxy snapshot's ``access`` lists who may use each application). Simple and
  correct; the hub coalesces bursts. A save touching only ``last_login`` (every login) is not a change.
* What a cached LDAP bind or RADIUS PAP answer was computed from (``bind_mode=cached``, outpost/bind_cache.py:
  emptied on every refresh) -> the same: property mappings (the reply attributes) and app passwords (a
  password the login accepted: created, changed or deleted).
* pre_delete of an AuthenticatedSession (logout, revocation, expiry) -> SESSION_END with its ``sid``
  (sha256 of the session key, the OIDC ``sid``) to every outpost.

All messages leave after the transaction commits (core/outposts/hub.py ``Publisher.defer``): an
outpost refetching before the commit would see the old state.
"""

from __future__ import annotations

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from core.accounts.models import (
    Application,
    AuthenticatedSession,
    Group,
    PropertyMapping,
    Provider,
    Token,
    TokenIntents,
    User,
)
from core.crypto.models import CertificateKeyPair  # a provider's certificate, re-read by its outposts
from core.outposts.hub import Publisher, publisher
from core.outposts.models import Outpost, OutpostChange
from core.policies.models import Policy, PolicyBinding
from protocols.outpost import hash_session_key, session_end, trigger_update

EVERY_OUTPOST = (Application, Policy, PolicyBinding, User, Group, CertificateKeyPair, PropertyMapping)
NOT_SERVED_FIELDS = frozenset({"last_login"})


def _defer(target, message, kwargs) -> None:
    publisher().defer(target, message, using=kwargs.get("using"))


def model_changed(sender, instance, **kwargs) -> None:
    """post_save / post_delete of anything (filtered here: one receiver instead of one per subclass)."""
    if kwargs.get("raw") or isinstance(instance, OutpostChange):
        return
    update_fields = kwargs.get("update_fields")
    if update_fields and frozenset(update_fields) <= NOT_SERVED_FIELDS:
        return
    deleted = "created" not in kwargs  # post_delete has no "created"
    if isinstance(instance, Outpost):
        _defer(instance.pk, trigger_update(), kwargs)
    elif isinstance(instance, Provider):
        if deleted:
            _defer(None, trigger_update(), kwargs)
        else:
            for pk in Outpost.objects.using(kwargs.get("using") or "default").filter(
                    providers__pk=instance.pk).values_list("pk", flat=True):
                _defer(pk, trigger_update(), kwargs)
    elif isinstance(instance, EVERY_OUTPOST) or (isinstance(instance, Token)
                                                  and instance.intent == TokenIntents.INTENT_APP_PASSWORD):
        _defer(None, trigger_update(), kwargs)


def providers_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Outpost.providers: the outposts on the outpost side of the change."""
    if not action.startswith("post_"):
        return
    if not reverse:  # outpost.providers.add(...)
        _defer(instance.pk, trigger_update(), kwargs)
    elif pk_set:  # provider.outposts.add(...)
        for pk in pk_set:
            _defer(pk, trigger_update(), kwargs)
    else:  # provider.outposts.clear(): the rows are gone, so we cannot tell which
        _defer(None, trigger_update(), kwargs)


def membership_changed(sender, instance, action, **kwargs) -> None:
    """User.groups / Application.backchannel_providers / Provider.property_mappings and the like."""
    if action.startswith("post_"):
        _defer(None, trigger_update(), kwargs)


def session_deleted(sender, instance: AuthenticatedSession, **kwargs) -> None:
    sid = instance.sid or hash_session_key(instance.session_key)
    _defer(None, session_end(sid), kwargs)


def connect(app_config) -> None:
    """Called from the app config's ready(): the process's Publisher goes on the app config (not a module
    global) and the receivers are connected once (dispatch_uid)."""
    from django.conf import settings

    redis = getattr(settings, "CONFIG", None) and settings.CONFIG.redis
    if getattr(app_config, "publisher", None) is None:
        app_config.publisher = Publisher(redis.url if redis else None)
    post_save.connect(model_changed, dispatch_uid="outposts-changed-save")
    post_delete.connect(model_changed, dispatch_uid="outposts-changed-delete")
    m2m_changed.connect(providers_changed, sender=Outpost.providers.through, dispatch_uid="outposts-m2m-providers")
    for through in (User.groups.through, Application.backchannel_providers.through,
                    Provider.property_mappings.through):
        m2m_changed.connect(membership_changed, sender=through, dispatch_uid=f"outposts-m2m-{through.__name__}")
    pre_delete.connect(session_deleted, sender=AuthenticatedSession, dispatch_uid="outposts-session-end")
