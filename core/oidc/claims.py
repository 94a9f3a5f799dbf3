"""The claims of ID tokens, access tokens and userinfo (OpenID Connect Core 1.0 §2, §5.1, §5.4).

The base claims follow authentik's ``IDToken`` (reference §6): iss, sub (per the provider's
sub_mode), aud = client_id, exp, iat, auth_time, acr, amr, nonce, sid = sha256(session key) (the
same value the outposts get in SESSION_END). Scope claims come from the provider's ScopeMappings
(the blueprint defaults give email/email_verified, name/given_name/preferred_username/nickname/
groups, entitlements, ak_proxy), evaluated in the expression-policy sandbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.accounts.models import User
from core.events.models import Event
from core.events.record import record
from core.oidc.models import ScopeMapping, SubModes
from core.policies import expression
from core.policies.types import PolicyRequest

LOGGER = logging.getLogger("gatehouse.oidc.claims")

ACR_DEFAULT = "goauthentik.io/providers/oauth2/default"
# The login event's auth_method -> RFC 8176 amr values (authentik constants AMR_*).
AMR = {
    "password": ["pwd"],
    "auth_mfa": ["pwd", "mfa"],
    "auth_webauthn_pwl": ["hwk"],
}
MAPPING_TIMEOUT = 10.0
# Claims a scope mapping may not replace: they bind the token to its issuer, client, user and session.
PROTECTED = {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "uid", "scope", "jti"}


@dataclass(frozen=True)
class TokenInfo:
    """``request.context["token"]`` / ``token`` in a scope mapping (authentik: the grant model)."""

    session_id: str | None
    scope: tuple[str, ...]


def subject(provider, user: User) -> str:
    """The ``sub`` claim per the provider's sub_mode (authentik ``IDToken.new``)."""
    mode = provider.sub_mode
    if mode == SubModes.USER_ID:
        return str(user.pk)
    if mode == SubModes.USER_UUID:
        return str(user.uuid)
    if mode == SubModes.USER_USERNAME:
        return user.username
    if mode == SubModes.USER_EMAIL:
        return user.email
    if mode == SubModes.USER_UPN:
        upn = (user.attributes or {}).get("upn")
        return upn if isinstance(upn, str) and upn else user.uid
    return user.uid


MAPPINGS_ATTR = "_gatehouse_scope_mappings"


def _load_mappings(provider) -> list[ScopeMapping]:
    return list(ScopeMapping.objects.filter(provider=provider).order_by("scope_name", "name"))


_NOT_YET = ()  # "load on first use" (an empty tuple: one object, and it survives pickling into an evaluator)


def remember_mappings(provider) -> None:
    """Let ``provider``'s scope mappings be loaded once for this instance, when first needed; the instance must live
    no longer than one request (the client lookup of the token endpoints: core/oidc/server.py). Other instances
    read them afresh on every call."""
    setattr(provider, MAPPINGS_ATTR, _NOT_YET)


def mappings(provider) -> list[ScopeMapping]:
    remembered = getattr(provider, MAPPINGS_ATTR, None)
    if remembered is None:
        return _load_mappings(provider)
    if remembered is _NOT_YET:
        remembered = _load_mappings(provider)
        setattr(provider, MAPPINGS_ATTR, remembered)
    return list(remembered)


def offered_scopes(provider) -> set[str]:
    """The scopes a provider grants: the scope names of its ScopeMappings."""
    return {m.scope_name for m in mappings(provider)}


def amr_for(user: User, session) -> list[str] | None:
    """From the login event that started ``session`` (authentik reads the same event)."""
    if session is None:
        return None
    event = (Event.objects.filter(action="login", user__pk=user.pk, created__gte=session.created
                                  - _slack()).order_by("created").first())
    if event is None:
        return None
    return AMR.get(str((event.context or {}).get("auth_method", ""))) or None


def _slack():
    from datetime import timedelta

    # The login event is written right after the session row; allow for clock granularity.
    return timedelta(seconds=5)


def _wrap(source: str) -> str:
    """Run a mapping through the expression-policy sandbox (its timeout, its refused names) and
    hand the mapping's return value back through ``context``: the policy evaluator only reports
    truthiness, so the body becomes a nested function whose result is stored."""
    body = "\n".join(f"    {line}" for line in (source or "").splitlines()) or "    return {}"
    return ("provider = context['provider']\ntoken = context['token']\n"
            f"def mapping():\n{body}\ncontext['mapping_result'] = mapping()\nreturn True\n")


def evaluate_mapping(mapping: ScopeMapping, provider, user: User, token: TokenInfo) -> dict:
    context = {"provider": provider, "token": token}
    request = PolicyRequest(user=user, context=context)
    try:
        expression.evaluate(_wrap(mapping.expression), request, timeout=MAPPING_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - admin-authored code: record, skip this mapping, go on
        LOGGER.warning("scope mapping %s failed: %s", mapping.name, exc)
        record("configuration_error", user=user, message=f"scope mapping {mapping.name!r} failed: "
               f"{type(exc).__name__}: {exc}", mapping=mapping.name)
        return {}
    result = context.get("mapping_result")
    if not isinstance(result, dict):
        if result is not None:
            record("configuration_error", user=user, mapping=mapping.name,
                   message=f"scope mapping {mapping.name!r} returned {type(result).__name__}, not a dict")
        return {}
    return result


def scope_claims(provider, user: User, scopes: list[str] | tuple[str, ...], sid: str | None) -> dict:
    """The claims of every mapping whose scope was granted (userinfo, and tokens when configured)."""
    token = TokenInfo(session_id=sid, scope=tuple(scopes))
    claims: dict = {}
    for mapping in mappings(provider):
        if mapping.scope_name not in scopes:
            continue
        for key, value in evaluate_mapping(mapping, provider, user, token).items():
            if key in PROTECTED or (key == "sid" and value is None):
                continue
            claims[str(key)] = value
    return claims


def id_token_claims(*, provider, user: User, issuer: str, scopes: list[str], expires: int, now: int,
                    auth_time: int | None, nonce: str | None, session, amr: list[str] | None) -> dict:
    """authentik's ``IDToken.to_dict()``: None values are left out (OIDC Core §5.3.2)."""
    claims = {
        "iss": issuer,
        "sub": subject(provider, user),
        "aud": provider.client_id,
        "exp": expires,
        "iat": now,
        "auth_time": auth_time if auth_time is not None else now,
        "acr": ACR_DEFAULT,
    }
    if amr:
        claims["amr"] = amr
    if nonce:
        claims["nonce"] = nonce
    sid = session.sid if session is not None else None
    if sid:
        claims["sid"] = sid
    if provider.include_claims_in_id_token:
        claims.update(scope_claims(provider, user, scopes, sid))
        claims.pop("sid", None)
        if sid:  # the session's, whatever a mapping says: outposts end sessions by it
            claims["sid"] = sid
    return claims
