"""``POST /api/v3/outposts/radius/<pk>/authenticate_challenge/``: CHAP and MS-CHAPv2 against the user's
network password (a token of intent ``radius``), with the application's policies, events and the login rate
limit; app passwords are not network passwords."""

from __future__ import annotations

import hashlib
import json
import os

from core.accounts.models import Token, TokenIntents, User
from core.events.models import Event
from protocols.outpost import RADIUS_CHALLENGE_PATH
from protocols.radius import mschap
from tests.api.test_outpost_authenticate import setup  # noqa: F401 - the fixture

from .conftest import bearer

NETWORK_PASSWORD = "network-Password-1"  # noqa: S105 - test value


def network_password(user: User, key: str = NETWORK_PASSWORD, intent: str = TokenIntents.INTENT_RADIUS) -> Token:
    token = Token(identifier=f"{user.username}-{intent}", intent=intent, user=user)
    token.set_key(key)
    token.save()
    return token


def post(setup, body, *, key=None):  # noqa: F811
    path = RADIUS_CHALLENGE_PATH.format(pk=setup["radius"].pk)
    return bearer(key or setup["radius-key"]).post(path, json.dumps(body), content_type="application/json")


def chap(username: str, password: str, ident: int = 3) -> dict:
    challenge = os.urandom(16)
    response = hashlib.md5(bytes([ident]) + password.encode() + challenge).digest()  # noqa: S324 - RFC 1994
    return {"username": username, "remote_ip": "192.0.2.20", "method": "chap", "ident": ident,
            "challenge": challenge.hex(), "response": response.hex()}


def mschapv2(username: str, password: str) -> dict:
    challenge, peer = os.urandom(16), os.urandom(16)
    nt = mschap.generate_nt_response(challenge, peer, username, password)
    return {"username": username, "remote_ip": "192.0.2.20", "method": "mschapv2", "challenge": challenge.hex(),
            "peer_challenge": peer.hex(), "response": nt.hex()}


def test_chap_with_the_network_password(setup):  # noqa: F811
    network_password(setup["alice"])
    answer = post(setup, chap("alice", NETWORK_PASSWORD)).json()
    assert answer["result"] == "ok" and answer["user"]["username"] == "alice"
    assert Event.objects.filter(action="login", context__radius_method="chap").exists()
    answer = post(setup, chap("alice", "not-it")).json()
    assert answer["result"] == "invalid_credentials"
    assert Event.objects.filter(action="login_failed", context__username="alice").exists()


def test_the_account_password_is_not_a_network_password(setup):  # noqa: F811
    from tests.api.test_outpost_authenticate import PASSWORD

    answer = post(setup, chap("alice", PASSWORD)).json()
    assert answer["result"] == "invalid_credentials" and "no network password; create one" in answer["reason"]


def test_an_app_password_is_not_a_network_password(setup):  # noqa: F811
    """CHAP / MS-CHAP check only tokens of intent radius: an app password (PAP, API) is not tried."""
    network_password(setup["alice"], intent=TokenIntents.INTENT_APP_PASSWORD)
    for body in (chap("alice", NETWORK_PASSWORD), mschapv2("alice", NETWORK_PASSWORD)):
        answer = post(setup, body).json()
        assert answer["result"] == "invalid_credentials" and "no network password" in answer["reason"]
    network_password(setup["alice"], "another-one")
    answer = post(setup, chap("alice", NETWORK_PASSWORD)).json()
    assert answer["result"] == "invalid_credentials" and "wrong network password" in answer["reason"]
    assert post(setup, chap("alice", "another-one")).json()["result"] == "ok"


def test_mschapv2_answers_the_authenticator_response_and_keys(setup):  # noqa: F811
    network_password(setup["alice"])
    body = mschapv2("alice", NETWORK_PASSWORD)
    answer = post(setup, body).json()
    assert answer["result"] == "ok", answer
    nt, peer, challenge = (bytes.fromhex(body[k]) for k in ("response", "peer_challenge", "challenge"))
    assert answer["authenticator_response"] == mschap.authenticator_response(NETWORK_PASSWORD, nt, peer,
                                                                             challenge, "alice")
    send, recv = mschap.mppe_keys(NETWORK_PASSWORD, nt)
    assert (answer["mppe_send_key"], answer["mppe_recv_key"]) == (send.hex(), recv.hex())
    assert post(setup, mschapv2("alice", "wrong")).json()["result"] == "invalid_credentials"


def test_mschap_v1(setup):  # noqa: F811
    network_password(setup["alice"])
    challenge = os.urandom(8)
    for password, result in ((NETWORK_PASSWORD, "ok"), ("wrong", "invalid_credentials")):
        nt = mschap.challenge_response(challenge, mschap.nt_password_hash(password))
        body = {"username": "alice", "remote_ip": "192.0.2.20", "method": "mschap", "challenge": challenge.hex(),
                "response": nt.hex()}
        assert post(setup, body).json()["result"] == result


def test_application_policies_and_inactive_users(setup):  # noqa: F811
    bob = User.objects.get(username="bob")  # not in the application's group
    network_password(bob, "bobs-network-password")
    assert post(setup, chap("bob", "bobs-network-password")).json()["result"] == "access_denied"
    network_password(setup["alice"])
    setup["alice"].is_active = False
    setup["alice"].save()
    assert post(setup, chap("alice", NETWORK_PASSWORD)).json()["result"] == "invalid_credentials"


def test_expired_network_password_refused(setup):  # noqa: F811
    from django.utils import timezone

    token = network_password(setup["alice"])
    token.expires = timezone.now() - timezone.timedelta(minutes=1)
    token.save()
    assert post(setup, chap("alice", NETWORK_PASSWORD)).json()["result"] == "invalid_credentials"


def test_only_the_providers_outpost_and_bad_bodies(setup):  # noqa: F811
    body = chap("alice", NETWORK_PASSWORD)
    assert post(setup, body, key=setup["ldap-key"]).status_code in (403, 404)
    assert post(setup, {**body, "response": "zz"}).status_code == 400
    assert post(setup, {**body, "method": "mschapv2"}).status_code == 400  # no peer_challenge
    assert post(setup, {**body, "method": "eap"}).status_code == 400


def test_the_login_rate_limit_applies(setup):  # noqa: F811
    """The web login's limit: after the failures it allows for one name from one address, even the right
    network password is refused unchecked; another address is not locked out."""
    network_password(setup["alice"])
    for _ in range(40):
        answer = post(setup, chap("alice", "wrong")).json()
        if answer["reason"].startswith("rate limited"):
            break
    else:
        raise AssertionError("40 wrong answers and never rate limited")
    limited = post(setup, chap("alice", NETWORK_PASSWORD)).json()
    assert limited["result"] == "invalid_credentials" and limited["reason"].startswith("rate limited")
    assert post(setup, {**chap("alice", NETWORK_PASSWORD), "remote_ip": "203.0.113.9"}).json()["result"] == "ok"
