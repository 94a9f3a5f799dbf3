"""``model_created`` / ``model_updated`` / ``model_deleted`` events for changes made while serving a request:
who (the request's user, however it authenticated), from where (its client address), what (the model and
its primary key), when. authentik records the same three actions from its audit middleware, with the same
``context.model`` shape (``app``, ``model_name``, ``pk``, ``name``), which the events API filters on
(``context_model_pk``).

Changes made outside a request (``ak`` commands, start-up blueprints, the worker) are not model events:
there is no actor to name. Bookkeeping rows (sessions, grants, reputation, outpost change notes, the events
themselves) and rows that hold secrets by value are not audited; a ``last_login`` stamp is not a change.
Values are never copied into the event, only which fields a save named, so no secret can leak through it.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache

from django.db.models.signals import m2m_changed, post_delete, post_save

from core.events.models import EventAction

NOT_AUDITED = frozenset({
    "authentik_events.event",
    "authentik_core.authenticatedsession",
    "authentik_outposts.outpostchange",
    "authentik_flows.flowtoken",
    "authentik_flows.statictoken",  # a recovery code, by value
    "authentik_flows.userconsent",  # recorded as authorize_application
    "authentik_policies.reputation",
    "authentik_policies.loginfailure",
    "authentik_providers_oauth2.authorizationcode",
    "authentik_providers_oauth2.accesstoken",
    "authentik_providers_oauth2.refreshtoken",
    "authentik_providers_oauth2.devicetoken",  # grants: token_issued says what matters
    "authentik_blueprints.blueprintinstance",
})
BOOKKEEPING_FIELDS = frozenset({"last_login", "last_updated"})

_REQUEST: ContextVar = ContextVar("gatehouse_audit_request", default=None)


class AuditMiddleware:
    """Makes the request being served known to the model signals below (one thread serves one request)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _REQUEST.set(request)
        try:
            return self.get_response(request)
        finally:
            _REQUEST.reset(token)


def current_request():
    """The Django request this thread is serving, or None (``ak`` commands, the worker, start-up)."""
    return _REQUEST.get()


def _label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def _audited(model) -> bool:
    """Ours, not bookkeeping, and not an m2m link row (those are reported as ``relation`` on their object)."""
    meta = model._meta
    return meta.app_label.startswith("authentik_") and not meta.auto_created and _label(model) not in NOT_AUDITED


def model_summary(instance) -> dict:
    meta = instance._meta
    return {"app": meta.app_label, "model_name": meta.model_name, "pk": instance.pk, "name": str(instance)}


def _record(action: str, instance, **context) -> None:
    request = _REQUEST.get()
    if request is None:
        return
    from core.events.record import record

    user = getattr(request, "user", None)  # DRF puts the Bearer token's user on the Django request too
    if user is not None and not user.is_authenticated:
        user = None
    record(action, user=user, model=model_summary(instance), **context)  # record() adds the client address


def saved(sender, instance, created, raw=False, update_fields=None, **kwargs) -> None:
    if raw or _REQUEST.get() is None or not _audited(sender):
        return
    if created:
        _record(EventAction.MODEL_CREATED, instance)
        return
    if update_fields is not None and frozenset(update_fields) <= BOOKKEEPING_FIELDS:
        return
    _record(EventAction.MODEL_UPDATED, instance, **({"fields": sorted(update_fields)} if update_fields else {}))


@cache
def _parents_of_others() -> frozenset:
    """Models other models extend (multi-table inheritance): Provider, Stage, Policy, PolicyBindingModel..."""
    from django.apps import apps

    return frozenset(parent for model in apps.get_models() for parent in model._meta.get_parent_list())


def deleted(sender, instance, **kwargs) -> None:
    # Deleting a ProxyProvider also deletes its OAuth2Provider and Provider rows, each with a post_delete;
    # the concrete row's event is the one that says what went (it always fires, whichever row was deleted).
    if _REQUEST.get() is not None and _audited(sender) and sender not in _parents_of_others():
        _record(EventAction.MODEL_DELETED, instance)


def _relation_name(instance, through) -> str:
    for field in instance._meta.get_fields():  # the forward field (user.groups) or the reverse one (group.users)
        if field.many_to_many and (getattr(field, "through", None) or field.remote_field.through) is through:
            return field.name
    return through._meta.model_name


def relation_changed(sender, instance, action, model, pk_set, **kwargs) -> None:
    """A membership-like change (``user.groups.add``, ``outpost.providers.set``) updates ``instance``."""
    if not action.startswith("post_") or _REQUEST.get() is None or not _audited(type(instance)):
        return
    _record(EventAction.MODEL_UPDATED, instance, relation={
        "field": _relation_name(instance, sender), "action": action.removeprefix("post_"),
        "model": _label(model), "pks": sorted(pk_set or [], key=str)})


def connect() -> None:
    post_save.connect(saved, dispatch_uid="gatehouse_audit_saved")
    post_delete.connect(deleted, dispatch_uid="gatehouse_audit_deleted")
    m2m_changed.connect(relation_changed, dispatch_uid="gatehouse_audit_relation")
