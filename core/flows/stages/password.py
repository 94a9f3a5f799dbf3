"""Password stage (``ak-stage-password``) and the password check the identification stage shares.

Argon2 through ``User.check_password``, which re-hashes an older hash on success. Every account
that cannot log in with a password -- unknown, inactive, without a usable password (imported
without one, outposts' service accounts) -- goes through one check of a dummy hash and fails
exactly like a wrong password: with a password backend every answer costs one hash, whoever asks
(no user enumeration, by time or by ``Server-Timing``). App passwords alone (TokenBackend) cost
no hash for anyone. Before any check the login rate limit is consulted (THREATS 13); while
limited, the answer is a response error and the password is not even looked at.
"""

from __future__ import annotations

import time

from django.contrib.auth.hashers import check_password

from core.accounts.models import Token, TokenIntents
from core.events.record import record
from core.flows.stages.base import Denied, Passed, StageContext, StageView
from core.policies import reputation

INBUILT_BACKEND = "authentik.core.auth.InbuiltBackend"
TOKEN_BACKEND = "authentik.core.auth.TokenBackend"  # noqa: S105 - a backend path
INVALID_PASSWORD = "Invalid password"  # noqa: S105 - a message
# Checked instead of the password of an account that cannot log in with one: argon2id with the parameters of
# core/accounts/hashers.py, of a random string nobody kept. A constant, because one made at first use cost that
# first check two hashes; tests/flows/test_password_hash.py fails if the hasher's parameters move away from it.
DUMMY_HASH = "argon2$argon2id$v=19$m=19456,t=2,p=1$bm91UDRUMkpIcDRrZTB5TDI2M2VNMQ$R02YUAO6TNdZ+bLUrU1FXmPlzhSlpDyIP0eRheWA9yI"  # noqa: S105, E501


def rate_limit_message(ctx: StageContext, identifier: str) -> str | None:
    """None with one attempt reserved (resolve it with record_failure / record_success), else the refusal."""
    wait = reputation.start_attempt(identifier, ctx.request.client_ip, peer=ctx.request.client_peer)
    return reputation.limited_message(wait) if wait else None


def verify_password(ctx: StageContext, user, password: str, backends: list | None) -> str | None:
    """The auth method ("password", "app_password") when ``password`` is right for ``user``, else None.

    Its duration goes out as ``Server-Timing: hash;dur=<ms>`` for every check, the dummy one included
    (so the header says nothing about whether the account exists; the response time says as much)."""
    started = time.perf_counter()
    try:
        return _verify(user, password, backends)
    finally:
        ctx.effects.timings["hash"] = (time.perf_counter() - started) * 1000


def can_use_password(user) -> bool:
    return user is not None and user.is_active and user.has_usable_password()


def _verify(user, password: str, backends: list | None) -> str | None:
    """Exactly one hash when a password backend is configured (the user's, or the dummy), none otherwise."""
    backends = backends or [INBUILT_BACKEND]
    if INBUILT_BACKEND in backends:
        if not can_use_password(user):
            check_password(password, DUMMY_HASH)
        elif user.check_password(password):
            return "password"
    if TOKEN_BACKEND in backends and user is not None and user.is_active:
        token = Token.authenticate(password, (TokenIntents.INTENT_APP_PASSWORD,))
        if token is not None and token.user_id == user.pk:
            return "app_password"
    return None


def record_failure(ctx: StageContext, identifier: str, stage_name: str) -> None:
    canonical = reputation.record_failure(identifier, ctx.request.client_ip, peer=ctx.request.client_peer)
    record("login_failed", client_ip=ctx.request.client_ip, username=identifier, username_canonical=canonical,
           stage=stage_name, flow=ctx.flow.slug)


def record_success(ctx: StageContext, identifier: str, method: str) -> None:
    reputation.record_success(identifier, ctx.request.client_ip, peer=ctx.request.client_peer)
    ctx.context["auth_method"] = method


class PasswordStageView(StageView):
    component = "ak-stage-password"
    with_user_info = True

    def challenge_fields(self) -> dict:
        return {"recovery_url": "", "allow_show_password": self.stage.allow_show_password}

    def post(self, data: dict):
        password = data.get("password")
        if not isinstance(password, str) or not password:
            return self.invalid("password", "This field is required.", "required")
        identifier = self.ctx.identifier()
        limited = rate_limit_message(self.ctx, identifier)
        if limited:
            return self.invalid("password", limited, "throttled")
        method = verify_password(self.ctx, self.ctx.pending_user, password, self.stage.backends)
        if method is None:
            record_failure(self.ctx, identifier, self.stage.name)
            failures = int(self.ctx.context.get("password_failures", 0)) + 1
            self.ctx.context["password_failures"] = failures
            if failures >= self.stage.failed_attempts_before_cancel > 0:
                return Denied(INVALID_PASSWORD)
            return self.invalid("password", INVALID_PASSWORD)
        record_success(self.ctx, identifier, method)
        self.ctx.context.pop("password_failures", None)
        return Passed()
