"""User write (``user_write`` has no challenge): create or update the pending user from ``prompt_data``.

In the ``initial-setup`` flow the user written is always ``akadmin`` (created if missing) and it
joins "authentik Admins"; that happens only while no administrator exists, re-checked here inside
the transaction (THREATS 14).
"""

from __future__ import annotations

from django.db import transaction

from core.accounts.bootstrap import ADMIN_GROUP, ADMIN_USERNAME, admin_exists
from core.accounts.models import Group, User
from core.accounts.usernames import problem as username_problem
from core.events.record import record
from core.flows.planner import INITIAL_SETUP_SLUG
from core.flows.stages.base import Denied, Passed, StageView

USER_FIELDS = ("username", "email", "name")
SECRET_KEYS = ("password", "password_repeat")


class UserWriteStageView(StageView):
    component = "xak-user-write"

    def get(self):
        return self._write()

    def post(self, data: dict):
        return self._write()

    @transaction.atomic
    def _write(self):
        data = dict(self.ctx.context.get("prompt_data") or {})
        setup = self.ctx.flow.slug == INITIAL_SETUP_SLUG
        if setup:
            if admin_exists():
                return Denied("Initial setup has already been completed; log in instead.")
            user, _ = User.objects.get_or_create(username=ADMIN_USERNAME,
                                                 defaults={"name": "authentik Default Admin"})
            data.pop("username", None)
        else:
            user = self.ctx.pending_user
        created = False
        username = data.get("username")
        if isinstance(username, str) and username and not setup and username != getattr(user, "username", None):
            refused = username_problem(username, exclude_pk=getattr(user, "pk", None))  # core/accounts/usernames.py
            if refused:
                return Denied(refused)
        if user is None:
            mode = self.stage.user_creation_mode
            if mode == "never_create":
                return Denied("No user to write to (this stage never creates users).")
            if not username:
                return Denied("No username given to create a user.")
            user = User(username=username, is_active=not self.stage.create_users_as_inactive,
                        type=self.stage.user_type or "external")
            if self.stage.user_path_template:
                user.path = self.stage.user_path_template
            created = True
        elif self.stage.user_creation_mode == "always_create" and not setup:
            return Denied("This stage always creates a new user, but one is already pending.")
        for key in USER_FIELDS:
            if key in data and isinstance(data[key], str) and data[key]:
                setattr(user, key, data[key])
        attributes = dict(user.attributes or {})
        for key, value in data.items():
            if key.startswith("attributes."):
                attributes[key.removeprefix("attributes.")] = value
        user.attributes = attributes
        password = data.get("password")
        if isinstance(password, str) and password:
            user.set_password(password)
        user.save()
        if created and self.stage.create_users_group_id:
            user.groups.add(self.stage.create_users_group)
        if setup:
            group, _ = Group.objects.get_or_create(name=ADMIN_GROUP, defaults={"is_superuser": True})
            if not group.is_superuser:
                group.is_superuser = True
                group.save(update_fields=["is_superuser"])
            user.is_active = True
            user.save(update_fields=["is_active"])
            user.groups.add(group)
        client_ip = self.ctx.request.client_ip
        record("user_write", user=user, client_ip=client_ip, created=created,
               fields=sorted(k for k in data if k not in SECRET_KEYS), flow=self.ctx.flow.slug)
        if isinstance(password, str) and password:
            current = self.ctx.request.user
            if current is not None and current.pk == user.pk:
                self.ctx.effects.password_changed = True
            record("password_set", user=user, client_ip=client_ip, flow=self.ctx.flow.slug)
        # The plaintext password leaves the session as soon as it is written.
        self.ctx.context["prompt_data"] = {k: v for k, v in data.items() if k not in SECRET_KEYS}
        self.ctx.set_pending_user(user)
        return Passed()
