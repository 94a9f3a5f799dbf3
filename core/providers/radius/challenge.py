"""CHAP, MS-CHAP and MS-CHAPv2 for the RADIUS outpost: the proof is checked against the user's network password.

A network password is a ``Token`` of intent ``radius`` (Gatehouse's own intent; README "RADIUS outpost"), made
by its owner or an admin through ``POST /api/v3/core/tokens/``, its key shown once. CHAP and MS-CHAP need the
cleartext (or the NT hash) on the server side, which an account password (argon2) never gives, so the key is
kept sealed with the secret key (``Token.set_key``) and unsealed here only. App passwords (intent
``app_password``) are NOT tried: they are for PAP (through the flow's password stage) and the API, and their
key can be read again through view_key; a network password works nowhere else. The flow does not run (a CHAP
or MS-CHAP client cannot answer its stages, and a network password stands for a login without a second
factor, as an app password does on the password stage), but the login rate limit
(core/policies/reputation.py), the ``login``/``login_failed`` events and the application's policies do. No
core session is opened.
"""

from __future__ import annotations

import logging

from core.accounts.models import Token, TokenIntents, TokenKeyUnreadable
from core.accounts.usernames import find_user
from core.api.access import user_has_access
from core.events.record import record
from core.policies import reputation
from protocols.radius import mschap

LOGGER = logging.getLogger("gatehouse.providers.radius")
MAX_TOKENS = 20  # network passwords tried per request, the newest first
MISSING_REASON = ("{method}: no network password; create one (POST /api/v3/core/tokens/ with intent 'radius', "
                  "README \"RADIUS outpost\"): CHAP and MS-CHAP do not use the account password nor app passwords")


def _network_passwords(user) -> list[str]:
    keys = []
    tokens = Token.objects.filter(user=user, intent=TokenIntents.INTENT_RADIUS).order_by("-created")
    for token in tokens[:MAX_TOKENS]:
        if token.is_expired:
            continue
        try:
            keys.append(token.read_key())
        except TokenKeyUnreadable:
            continue
    return keys


def _check(method: str, key: str, body: dict) -> dict | None:
    """None when ``key`` does not produce the proof; else the extras of the answer."""
    if method == "chap":
        return {} if mschap.chap_valid(body["ident"], key.encode(), body["challenge"], body["response"]) else None
    if method == "mschap":  # v1: no MPPE keys are sent (MS-CHAP-MPPE-Keys needs the LM hash; see README)
        return {} if mschap.verify_mschap(key, body["challenge"], body["response"]) else None
    if not mschap.verify_mschapv2(key, body["challenge"], body["peer_challenge"], body["username"],
                                  body["response"]):
        return None
    send, recv = mschap.mppe_keys(key, body["response"])
    return {"authenticator_response": mschap.authenticator_response(
                key, body["response"], body["peer_challenge"], body["challenge"], body["username"]),
            "mppe_send_key": send.hex(), "mppe_recv_key": recv.hex()}


def authenticate_challenge(provider, application, body: dict, peer: str = "") -> dict:
    """The answer to one CHAP / MS-CHAPv2 Access-Request (``body`` validated by the view, octets as bytes)."""
    from core.api.outpost_config import auth_user
    from core.providers.radius.mappings import accept_attributes

    username, ip, method = body["username"], body["remote_ip"], body["method"]
    wait = reputation.start_attempt(username, ip, peer=peer)
    if wait:
        return {"result": "invalid_credentials", "reason": f"rate limited: {reputation.limited_message(wait)}"}
    user = find_user(username, ["username"])
    keys = _network_passwords(user) if user is not None and user.is_active else []
    extras = None
    for key in keys:
        extras = _check(method, key, body)
        if extras is not None:
            break
    if extras is None:
        canonical = reputation.record_failure(username, ip, peer=peer)
        record("login_failed", client_ip=ip, username=username, username_canonical=canonical,
               stage=f"radius {method}", provider=provider.name)
        if user is not None and user.is_active and not keys:
            return {"result": "invalid_credentials", "reason": MISSING_REASON.format(method=method)}
        return {"result": "invalid_credentials", "reason": f"{method}: wrong network password or unknown user"}
    reputation.record_success(username, ip, peer=peer)
    passing, messages = user_has_access(user, application)
    if not passing:
        return {"result": "access_denied", "reason": "; ".join(str(m) for m in messages) or
                f"the policies of application {application.slug!r} refused {user.username!r}"}
    record("login", user=user, client_ip=ip, auth_method="network_password", radius_method=method,
           provider=provider.name)
    return {"result": "ok", "reason": f"{method} with a network password", "user": auth_user(user).to_json(),
            "reply_attributes": accept_attributes(provider, user), **extras}
