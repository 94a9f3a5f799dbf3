"""Consent (``ak-stage-consent``): the user agrees that an application gets the listed permissions.

The flow's context names the application (``application``: pk) and the permissions
(``consent_permissions``: [{id, name}]), which the OIDC provider puts there when it plans the
authorization flow. Modes: always_require, permanent (UserConsent without expiry), expiring
(expires after ``consent_expire_in``). A previous consent covering every permission skips the
stage; the answer must echo the challenge's ``token``.
"""

from __future__ import annotations

import secrets

from django.db.models import Q
from django.utils import timezone

from core.accounts.models import Application
from core.durations import parse
from core.flows.models import UserConsent
from core.flows.stages.base import Denied, Passed, StageView

TOKEN_KEY = "consent_token"  # noqa: S105 - a context key


def _ids(permissions) -> set[str]:
    return {str(p.get("id")) for p in permissions or [] if isinstance(p, dict)}


class ConsentStageView(StageView):
    component = "ak-stage-consent"
    with_user_info = True

    def _application(self):
        pk = self.ctx.context.get("application")
        return Application.objects.filter(pk=pk).first() if pk else None

    def _user(self):
        return self.ctx.request.user or self.ctx.pending_user

    def _existing(self, user, application) -> set[str]:
        granted: set[str] = set()
        now = timezone.now()
        for consent in UserConsent.objects.filter(user=user, application=application).filter(
                Q(expires__isnull=True) | Q(expires__gt=now)):
            granted |= {p for p in consent.permissions.split() if p} | {""}
        return granted

    def challenge_fields(self) -> dict:
        application = self._application()
        token = self.ctx.context.get(TOKEN_KEY) or secrets.token_urlsafe(24)
        self.ctx.context[TOKEN_KEY] = token
        requested = self.ctx.context.get("consent_permissions") or []
        user = self._user()
        granted = self._existing(user, application) if user and application else set()
        return {
            "header_text": self.ctx.context.get("consent_header")
            or (f"You're about to sign into {application.name}." if application else ""),
            "permissions": [p for p in requested if str(p.get("id")) not in granted] if granted else requested,
            "additional_permissions": [p for p in requested if str(p.get("id")) not in granted] if granted else [],
            "token": token,
        }

    def get(self):
        user, application = self._user(), self._application()
        if user is None or application is None:
            return Denied("No application or user to consent for.")
        if self.stage.mode != "always_require":
            granted = self._existing(user, application)
            if granted and _ids(self.ctx.context.get("consent_permissions")) <= granted:
                return Passed()
        return self.show()

    def post(self, data: dict):
        user, application = self._user(), self._application()
        if user is None or application is None:
            return Denied("No application or user to consent for.")
        expected = self.ctx.context.get(TOKEN_KEY)
        if not expected or not secrets.compare_digest(str(data.get("token", "")), expected):
            return self.invalid("token", "Invalid consent token; please try again.")
        self.ctx.context.pop(TOKEN_KEY, None)
        if self.stage.mode in ("permanent", "expiring"):
            expires = None
            if self.stage.mode == "expiring":
                expires = timezone.now() + parse(self.stage.consent_expire_in or "weeks=4")
            permissions = " ".join(sorted(_ids(self.ctx.context.get("consent_permissions"))))
            UserConsent.objects.update_or_create(user=user, application=application, permissions=permissions,
                                                 defaults={"expires": expires})
        self.ctx.context["consent_granted"] = True
        return Passed()
