"""Issuing, finding and judging tokens (RFC 6749 §5.1, OIDC Core §3.1.3.3 and §3.1.3.6).

The access token is a JWT: the ID-token claims plus ``azp``, ``uid`` (a random id) and ``scope``
(reference §6). Every token is stored as sha256(value) with its provider, user, login session,
scopes and expiry, so that introspection and revocation work and a token is bound to its client.
A token counts as active only while it is unexpired, unrevoked, its user is active and its login
session (when it had one) still exists: deleting the session deletes the rows (THREATS 12).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

import jwt
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.accounts.models import hash_key
from core.durations import parse
from core.events.record import record
from core.oidc import claims as claims_mod
from core.oidc import keys
from core.oidc.models import AccessToken, AuthorizationCode, RefreshToken

OFFLINE_ACCESS = "offline_access"


@dataclass
class Issued:
    response: dict
    access: AccessToken
    refresh: RefreshToken | None


def _half_hash(value: str) -> str:
    """OIDC Core §3.1.3.6 at_hash for the SHA-256 algorithms (HS256, RS256, ES256)."""
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def sign(provider, payload: dict) -> str:
    material = keys.signing_material(provider)
    headers = {"kid": material.kid} if material.kid else None
    return jwt.encode(payload, material.key, algorithm=material.alg, headers=headers)


TOKEN_LOGIN_GRANTS = frozenset({"client_credentials", "password"})


def issue(*, provider, user, scopes: list[str], grant_type: str, issuer: str, session=None, auth_time=None,
          nonce: str | None = None, authorization_code: AuthorizationCode | None = None,
          include_refresh: bool = False, client_ip: str | None = None) -> Issued:
    """Create and store an access token (and a refresh token when allowed) and build the response."""
    now = timezone.now()
    access_expiry = now + parse(provider.access_token_validity)
    auth_ts = int(auth_time.timestamp()) if auth_time else None
    base = claims_mod.id_token_claims(
        provider=provider, user=user, issuer=issuer, scopes=scopes, expires=int(access_expiry.timestamp()),
        now=int(now.timestamp()), auth_time=auth_ts, nonce=nonce, session=session,
        amr=claims_mod.amr_for(user, session))
    access_claims = {**base, "azp": provider.client_id, "uid": secrets.token_urlsafe(24), "scope": " ".join(scopes)}
    access_value = sign(provider, access_claims)
    id_claims = {**base, "at_hash": _half_hash(access_value)}
    id_value = sign(provider, id_claims)
    refresh_value = secrets.token_urlsafe(48) if include_refresh and OFFLINE_ACCESS in scopes else None
    # The rows and the event in one transaction (one commit, not two or three; an enclosing one, such as the
    # code exchange's, is simply joined): all of them are there or none, and the answer leaves after the commit.
    with transaction.atomic(savepoint=False):
        access = AccessToken.objects.create(
            provider=provider, user=user, session=session, scope=" ".join(scopes), auth_time=auth_time,
            expires=access_expiry, token_hash=hash_key(access_value), grant_type=grant_type, claims=base,
            authorization_code=authorization_code)
        refresh = None
        if refresh_value is not None:
            refresh = RefreshToken.objects.create(
                provider=provider, user=user, session=session, scope=" ".join(scopes), auth_time=auth_time,
                expires=now + parse(provider.refresh_token_validity), token_hash=hash_key(refresh_value),
                nonce=nonce or "", authorization_code=authorization_code)
        if grant_type in TOKEN_LOGIN_GRANTS:
            # authentik records a machine's token request as a login by token (its TokenView); a code or refresh
            # exchange continues an authorization already recorded (authorize_application) and records nothing.
            app = application_of(provider)
            record("login", user=user, client_ip=client_ip, app=app.slug if app else "", provider=provider.name,
                   method="token", grant_type=grant_type, scope=" ".join(scopes))
    response = {
        "access_token": access_value,
        "token_type": "Bearer",
        "scope": " ".join(scopes),
        "expires_in": int((access_expiry - now).total_seconds()),
        # authentik answers with an id_token for every grant (the proxy outpost's Basic auth needs it).
        "id_token": id_value,
    }
    if refresh_value is not None:
        response["refresh_token"] = refresh_value
    return Issued(response, access, refresh)


def application_of(provider):
    """The provider's application, or None: the one loaded with the provider when it was (core/oidc/server.py
    query_client), else one query."""
    from core.accounts.models import Application

    descriptor = getattr(type(provider), "application", None)
    if descriptor is not None and descriptor.is_cached(provider):
        return provider.application
    return Application.objects.filter(provider_id=provider.pk).first()


def find_access_token(value: str | None) -> AccessToken | None:
    if not value or len(value) > 16384:
        return None
    return AccessToken.objects.select_related("user", "provider", "session").filter(
        token_hash=hash_key(value)).first()


def find_refresh_token(value: str | None) -> RefreshToken | None:
    if not value or len(value) > 1024:
        return None
    return RefreshToken.objects.select_related("user", "provider", "session").filter(
        token_hash=hash_key(value)).first()


def is_active(token) -> bool:
    """Unexpired, unrevoked, for an active user; a deleted session already deleted the row."""
    return (not token.revoked and token.expires > timezone.now() and token.user.is_active)


def revoke_family(code: AuthorizationCode | None = None, *, refresh: RefreshToken | None = None) -> int:
    """Revoke every token issued from an authorization code (RFC 6749 §4.1.2 on code replay,
    Security BCP §4.14.2 on refresh-token replay)."""
    if code is None and refresh is not None:
        code = refresh.authorization_code
    if code is not None:
        q = Q(authorization_code=code)
        count = AccessToken.objects.filter(q, revoked=False).update(revoked=True)
        return count + RefreshToken.objects.filter(q, revoked=False).update(revoked=True)
    if refresh is not None:
        return RefreshToken.objects.filter(pk=refresh.pk).update(revoked=True)
    return 0
