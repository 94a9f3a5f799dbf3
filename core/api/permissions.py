"""Who may call what (authentik grants per-object permissions; Gatehouse has three roles).

- superusers (``user.is_superuser``, via a superuser group) may do everything;
- an outpost's service account may do what its view lists in ``outpost_actions`` (optionally only
  for the outpost types in ``outpost_types``), on the objects ``scope_outpost()`` leaves it;
- any signed-in user may do what the view lists in ``user_actions``, on the objects
  ``scope_user()`` leaves them (their own tokens, their own sessions, ``users/me``).

Everything else is refused: 401 without credentials, 403 with a detail that names what is missing.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from core.accounts.models import UserTypes

_NO_OUTPOST = object()


def request_outpost(request):
    """The outpost whose service account made this request (cached on the request), or None."""
    cached = getattr(request, "_gatehouse_outpost", _NO_OUTPOST)
    if cached is _NO_OUTPOST:
        from core.outposts.service import outpost_for_user

        cached = outpost_for_user(request.user) if is_authenticated(request.user) else None
        request._gatehouse_outpost = cached
    return cached


def is_authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def is_superuser(user) -> bool:
    return is_authenticated(user) and bool(getattr(user, "is_superuser", False))


def is_service_account(user) -> bool:
    return getattr(user, "type", None) == UserTypes.INTERNAL_SERVICE_ACCOUNT


def _action(view, request) -> str:
    return getattr(view, "action", None) or request.method.lower()


class IsSuperuser(BasePermission):
    """The default for every API view: superusers only."""

    def has_permission(self, request, view) -> bool:
        if is_superuser(request.user):
            return True
        if is_authenticated(request.user):
            self.message = (f"user {request.user.username!r} may not use this endpoint: it needs a superuser "
                            "(a member of a group with is_superuser)")
        return False


class ViewAccess(BasePermission):
    """Superusers, plus the outpost and user actions the view declares (see the module docstring)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not is_authenticated(user):
            return False  # DRF answers 401 when nothing authenticated the request
        if user.is_superuser:
            return True
        action = _action(view, request)
        outpost = request_outpost(request)
        if outpost is not None and action in getattr(view, "outpost_actions", ()):
            types = getattr(view, "outpost_types", None)
            if types is None or any(outpost.serves(kind) for kind in types):
                return True
        if action in getattr(view, "user_actions", ()):
            # An outpost's service account is not a person: no self-service tokens or sessions for it.
            if not (is_service_account(user) and action in getattr(view, "people_only_actions", ())):
                return True
        self.message = (f"user {user.username!r} may not {action} {getattr(view, 'basename', None) or 'here'}: "
                        "it needs a superuser" + (" or an outpost that uses these objects" if outpost else ""))
        return False


class ScopedQuerysetMixin:
    """Narrow the queryset to what the caller may see; fail closed (nothing) by default."""

    def get_queryset(self):
        qs = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular introspection, no real request
            return qs
        user = self.request.user
        if is_superuser(user):
            return qs
        outpost = request_outpost(self.request)
        if outpost is not None and self.action in getattr(self, "outpost_actions", ()):
            return self.scope_outpost(qs, outpost)
        if is_authenticated(user) and self.action in getattr(self, "user_actions", ()):
            return self.scope_user(qs, user)
        return qs.none()

    def scope_outpost(self, qs, outpost):
        return qs.none()

    def scope_user(self, qs, user):
        return qs.none()
