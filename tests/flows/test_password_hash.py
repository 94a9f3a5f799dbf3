"""Every password check costs one hash, whoever the account is (issue 8 item 11; no user enumeration).

Attack: time the password answer (or read its ``Server-Timing``) to learn which names are accounts that cannot
log in with a password (imported without one, service accounts, deactivated): they answered in 1 ms, real
accounts in 25 ms. Now each kind runs exactly one hash -- its own or the dummy one. Counted by wrapping the
hasher (never by wall-clock thresholds); the header is checked with a hasher slowed by a fixed sleep, so a
skipped hash shows as a ``hash;dur`` below that sleep.
"""

from __future__ import annotations

import re
import time

import pytest

from core.accounts.hashers import Argon2idHasher
from core.accounts.models import User, UserTypes
from core.flows.stages.password import INBUILT_BACKEND, TOKEN_BACKEND

pytestmark = pytest.mark.django_db

SLEEP_MS = 40
KINDS = ["right", "wrong", "unknown", "inactive", "no_password", "service_account"]


@pytest.fixture
def hashes(monkeypatch) -> list:
    """Every hash computed (a verify or an encode of the default hasher), each slowed by SLEEP_MS."""
    calls: list = []
    verify, encode = Argon2idHasher.verify, Argon2idHasher.encode

    def slow_verify(self, password, encoded):
        calls.append("verify")
        time.sleep(SLEEP_MS / 1000)
        return verify(self, password, encoded)

    def slow_encode(self, password, salt):
        calls.append("encode")
        time.sleep(SLEEP_MS / 1000)
        return encode(self, password, salt)

    monkeypatch.setattr(Argon2idHasher, "verify", slow_verify)
    monkeypatch.setattr(Argon2idHasher, "encode", slow_encode)
    return calls


@pytest.fixture
def accounts(db):
    User.objects.create_user("alice", "alice@example.com", "correct horse")
    User.objects.create_user("ivy", "ivy@example.com", "correct horse", is_active=False)
    User.objects.create_user("nopass", "nopass@example.com")  # e.g. a CSV import without passwords
    User.objects.create_user("svc", type=UserTypes.INTERNAL_SERVICE_ACCOUNT)  # outposts' accounts have none


def _answer(kind: str) -> tuple[str, str]:
    return {"right": ("alice", "correct horse"), "wrong": ("alice", "wrong"), "unknown": ("nobody", "x"),
            "inactive": ("ivy", "correct horse"), "no_password": ("nopass", "anything"),
            "service_account": ("svc", "anything")}[kind]


def _hash_ms(response) -> float:
    match = re.fullmatch(r"hash;dur=(\d+(?:\.\d+)?)", response["Server-Timing"])
    assert match, response.headers
    return float(match.group(1))


@pytest.mark.parametrize("kind", KINDS)
def test_password_stage_hashes_once_for_every_kind_of_account(flows, accounts, executor, hashes, kind):
    flows.authentication(mfa=False)
    uid, password = _answer(kind)
    ex = executor("default-authentication-flow")
    ex.get()
    assert ex.post(component="ak-stage-identification", uid_field=uid)["component"] == "ak-stage-password"
    hashes.clear()  # creating the accounts hashed too
    response = ex.post_raw(component="ak-stage-password", password=password)
    assert len(hashes) == 1, f"{kind}: {hashes}"
    assert _hash_ms(response) >= SLEEP_MS, f"{kind}: the header says no hash ran: {response['Server-Timing']}"


@pytest.mark.parametrize("kind", KINDS)
def test_identification_with_password_hashes_once_for_every_kind_of_account(flows, accounts, executor, hashes,
                                                                           kind):
    flows.authentication(password_in_identification=True, mfa=False)
    uid, password = _answer(kind)
    ex = executor("default-authentication-flow")
    ex.get()
    hashes.clear()
    response = ex.post_raw(component="ak-stage-identification", uid_field=uid, password=password)
    assert len(hashes) == 1, f"{kind}: {hashes}"
    assert _hash_ms(response) >= SLEEP_MS, response["Server-Timing"]


@pytest.mark.parametrize("backends, expected", [([INBUILT_BACKEND], 1), ([TOKEN_BACKEND], 0),
                                                ([INBUILT_BACKEND, TOKEN_BACKEND], 1)])
@pytest.mark.parametrize("kind", KINDS)
def test_hash_count_depends_on_the_backends_not_on_the_account(accounts, hashes, backends, expected, kind):
    """App passwords alone (TokenBackend) hash nothing for anyone; a password backend hashes once for everyone."""
    from core.flows.stages.password import _verify

    uid, password = _answer(kind)
    user = User.objects.filter(username=uid).first()
    hashes.clear()
    _verify(user, password, backends)
    assert len(hashes) == expected, f"{kind} with {backends}: {hashes}"


def test_the_dummy_hash_matches_the_hasher():
    """The dummy costs what a real hash costs only while it has the default hasher's parameters."""
    from django.contrib.auth.hashers import get_hasher, identify_hasher

    from core.flows.stages.password import DUMMY_HASH

    hasher = get_hasher()
    assert identify_hasher(DUMMY_HASH).algorithm == hasher.algorithm
    assert not hasher.must_update(DUMMY_HASH), "regenerate DUMMY_HASH with make_password(<random>)"
    mine, ours = hasher.decode(DUMMY_HASH)["params"], hasher.params()
    for name in ("type", "version", "memory_cost", "time_cost", "parallelism", "hash_len"):
        assert getattr(mine, name) == getattr(ours, name), f"{name}: regenerate DUMMY_HASH"
