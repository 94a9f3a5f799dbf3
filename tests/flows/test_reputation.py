"""THREATS 13 (brute force) without THREATS-13-as-a-weapon: the login rate limit slows attackers and
locks out nobody else (core/policies/reputation.py has the policy and its numbers).

Through the flow executor API, as the login page and the outposts drive it:
- the owner logs in from a clean address while an attacker hammers the account from others (akadmin too);
- one address behind a NAT hammering or spraying locks out nobody else behind it;
- rotating X-Forwarded-For from a trusted peer does not reset the per-address count;
- the delay against a name attacked from many addresses grows, and stops at its ceiling;
- every spelling of a name counts on one counter, and "admın" (dotless ı) is another name, not admin's.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.accounts.models import AuthenticatedSession, Group, User
from core.accounts.usernames import canonical, find_user
from core.policies import reputation
from core.policies.models import LoginFailure, Reputation
from core.policies.reputation import (
    ADDRESS_FREE_NAMES,
    DEFAULT_LIMITS,
    MAX_DELAY_SECONDS,
    NAME_FREE_FAILURES,
    PAIR_LIMIT,
    PEER_CLAIMS,
    History,
    canonical_username,
    decide,
    retry_after,
)
from tests.flows.conftest import login

pytestmark = pytest.mark.django_db

FLOW = "default-authentication-flow"
PASSWORD = "correct horse"


def attempt(executor, uid: str, password: str, **headers) -> dict:
    return login(executor(FLOW, **headers), uid, password)


def outcome(answer: dict) -> str:
    """"ok" (logged in), "invalid" (the password was checked and wrong) or "throttled" (not checked)."""
    if answer["component"] == "xak-flow-redirect":
        return "ok"
    errors = answer["response_errors"]["password"]
    return errors[0]["code"]


def wait_in(answer: dict) -> int:
    text = answer["response_errors"]["password"][0]["string"]
    return int(text.split("try again in ")[1].split()[0])


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The rate limit's clock, frozen: the delays are then exact, however slow the machine (no timing in tests)."""

    class Clock:
        def __init__(self):
            self.at = timezone.now()

        def now(self):
            return self.at

    frozen = Clock()
    monkeypatch.setattr(reputation, "timezone", frozen)
    return frozen


@pytest.fixture
def akadmin(db) -> User:
    user = User.objects.create_user("akadmin", "admin@example.com", "admin-secret")
    user.groups.add(Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})[0])
    return user


# --- the policy as a pure function ------------------------------------------------------------------


def test_decide_rules():
    now = timezone.now()
    assert decide(History(), now) == 0
    # rule 1: PAIR_LIMIT failures of one name from one address: that pair waits out the window
    stamps = tuple(now - timedelta(seconds=10 * i) for i in reversed(range(PAIR_LIMIT)))
    wait = decide(History(pair_failures=PAIR_LIMIT, pair_latest=stamps, name_failures=PAIR_LIMIT), now)
    assert DEFAULT_LIMITS.window_seconds - 10 * (PAIR_LIMIT - 1) <= wait <= DEFAULT_LIMITS.window_seconds
    # rule 2: the name is attacked from many addresses; a clean address is never slowed
    busy = History(name_failures=NAME_FREE_FAILURES + 3, name_last=now)
    assert decide(busy, now) == 0
    assert decide(History(pair_failures=1, name_failures=NAME_FREE_FAILURES + 3, name_last=now), now) == 4
    # rule 3: an address spraying names slows names that never logged in from there, not the known ones
    spray = dict(address_names=ADDRESS_FREE_NAMES + 2, address_last=now)
    assert decide(History(**spray), now) == 2
    assert decide(History(**spray, known_here=True), now) == 0


def test_the_delay_doubles_up_to_its_ceiling():
    now = timezone.now()
    waits = [decide(History(pair_failures=1, name_failures=NAME_FREE_FAILURES + k, name_last=now), now)
             for k in range(1, 10)]
    assert waits == [min(2 ** (k - 1), MAX_DELAY_SECONDS) for k in range(1, 10)]
    assert waits[-1] == MAX_DELAY_SECONDS and waits == sorted(waits)


# --- through the flow executor -----------------------------------------------------------------------


@pytest.mark.parametrize("owner", ["alice", "akadmin"])
def test_owner_logs_in_from_a_clean_address_while_an_attacker_hammers(flows, alice, akadmin, executor, owner):
    flows.authentication()
    password = {"alice": PASSWORD, "akadmin": "admin-secret"}[owner]
    seen = []
    for round_ in range(3):
        for i in range(1, 6):  # five attacker addresses, each far past the old "five and you're out"
            seen.append(outcome(attempt(executor, owner, f"guess-{round_}-{i}", REMOTE_ADDR=f"198.51.100.{i}")))
        # the owner, from an address with no failures, in the middle of it all
        assert outcome(attempt(executor, owner, password, REMOTE_ADDR=f"203.0.113.{round_ + 1}")) == "ok"
    assert seen.count("invalid") <= PAIR_LIMIT * 5 and "throttled" in seen
    assert AuthenticatedSession.objects.filter(user__username=owner).count() == 3
    # the attacker's addresses are throttled, with the right password too: the attacker cannot tell
    assert outcome(attempt(executor, owner, password, REMOTE_ADDR="198.51.100.1")) == "throttled"


def test_one_address_hammering_one_user_locks_out_nobody_else_behind_it(flows, alice, executor):
    flows.authentication()
    nat = {"REMOTE_ADDR": "192.0.2.10"}
    User.objects.create_user("bob", "bob@example.com", "pw-bob")
    results = [outcome(attempt(executor, "alice", f"wrong-{i}", **nat)) for i in range(30)]
    assert results.count("invalid") == PAIR_LIMIT and results[PAIR_LIMIT:] == ["throttled"] * (30 - PAIR_LIMIT)
    assert outcome(attempt(executor, "bob", "pw-bob", **nat)) == "ok"  # a colleague behind the same NAT
    assert outcome(attempt(executor, "alice", PASSWORD, REMOTE_ADDR="203.0.113.50")) == "ok"  # alice at home


def test_an_address_spraying_names_slows_only_names_new_to_it_and_never_locks(flows, alice, executor):
    flows.authentication()
    nat = {"REMOTE_ADDR": "192.0.2.20"}
    User.objects.create_user("bob", "bob@example.com", "pw-bob")
    assert outcome(attempt(executor, "bob", "pw-bob", **nat)) == "ok"  # bob works here
    results = [outcome(attempt(executor, f"user{i}", "Winter2026!", **nat)) for i in range(ADDRESS_FREE_NAMES + 6)]
    assert results[:ADDRESS_FREE_NAMES + 1] == ["invalid"] * (ADDRESS_FREE_NAMES + 1)
    assert "throttled" in results  # the spray is slowed down
    assert outcome(attempt(executor, "bob", "pw-bob", **nat)) == "ok"  # bob is not
    newcomer = attempt(executor, "alice", PASSWORD, **nat)  # alice never logged in from here: a delay, no lock
    assert outcome(newcomer) == "throttled" and 0 < wait_in(newcomer) <= MAX_DELAY_SECONDS


def test_rotating_forwarded_for_from_a_trusted_peer_does_not_reset_the_count(flows, alice, executor):
    flows.authentication()
    peer = "10.9.8.7"  # inside the default trusted networks: its X-Forwarded-For is believed
    results = [outcome(attempt(executor, "alice", f"wrong-{i}", REMOTE_ADDR=peer,
                               HTTP_X_FORWARDED_FOR=f"203.0.113.{i + 1}")) for i in range(40)]
    checked = results.count("invalid")
    assert checked <= PEER_CLAIMS + 1, results  # without the cap: 40 fresh addresses, 40 checks
    assert results[-10:] == ["throttled"] * 10
    assert LoginFailure.objects.filter(ip=peer).exists()  # the claims past the cap count on the peer
    # each claimed address that stayed under the cap is counted as itself, never as the peer
    assert LoginFailure.objects.filter(ip="203.0.113.1", peer=peer).count() == 1
    # the owner, elsewhere, is unaffected
    assert outcome(attempt(executor, "alice", PASSWORD, REMOTE_ADDR="198.51.100.200")) == "ok"


def test_rotating_forwarded_for_while_spraying_is_bounded(flows, executor):
    flows.authentication()
    peer = "10.9.8.8"
    results = [outcome(attempt(executor, f"user{i}", "Winter2026!", REMOTE_ADDR=peer,
                               HTTP_X_FORWARDED_FOR=f"203.0.113.{i + 1}")) for i in range(60)]
    assert results.count("invalid") <= PEER_CLAIMS + ADDRESS_FREE_NAMES + 1, results
    assert results[-5:] == ["throttled"] * 5


def test_the_delay_grows_with_each_failure_from_another_address(flows, alice, executor):
    flows.authentication()
    waits = []
    for i in range(1, NAME_FREE_FAILURES + 9):
        assert outcome(attempt(executor, "alice", f"wrong-{i}", REMOTE_ADDR=f"198.51.100.{i}")) == "invalid"
        probe = attempt(executor, "alice", PASSWORD, REMOTE_ADDR="198.51.100.1")  # a failing address
        if i > NAME_FREE_FAILURES:
            assert outcome(probe) == "throttled"
            waits.append(wait_in(probe))
        elif i == 1:
            # one failure from this address is not a lock: its next try is checked (and here it is right)
            assert outcome(probe) == "ok"
    assert waits == sorted(waits) and waits[0] <= 1 and waits[-1] == MAX_DELAY_SECONDS, waits
    assert len(set(waits)) >= 6  # 1, 2, 4, 8, 16, 32, 60


def test_every_spelling_of_a_name_counts_once(flows, alice, executor):
    flows.authentication()
    spellings = ["Alice", "ALICE", "ａｌｉｃｅ", "alice@example.com", "ALICE@EXAMPLE.COM"]
    assert len(spellings) == PAIR_LIMIT
    for name in spellings:
        assert outcome(attempt(executor, name, "wrong", REMOTE_ADDR="198.51.100.7")) == "invalid"
    assert set(LoginFailure.objects.values_list("identifier", flat=True)) == {"alice"}
    assert outcome(attempt(executor, "alice", PASSWORD, REMOTE_ADDR="198.51.100.7")) == "throttled"


def test_dotless_i_is_another_name_and_never_logs_in_as_admin(flows, akadmin, executor):
    """On PostgreSQL ``username__iexact='akadmın'`` matches akadmin (UPPER('ı') = 'I'); the lookup compares
    the canonical form instead, on both databases, so the look-alike is an unknown name with its own counter."""
    flows.authentication()
    assert canonical("akadmın") != canonical("akadmin") and find_user("akadmın", ["username", "email"]) is None
    for name in ["akadmın", "AKADMIN"]:
        answer = attempt(executor, name, "admin-secret", REMOTE_ADDR="198.51.100.9")
        assert outcome(answer) == ("invalid" if name == "akadmın" else "ok"), name
    assert canonical_username("akadmın") == "akadmın" and canonical_username("AKADMIN") == "akadmin"
    assert set(LoginFailure.objects.values_list("identifier", flat=True)) == {"akadmın"}
    assert AuthenticatedSession.objects.filter(user=akadmin).count() == 1


@pytest.mark.postgres
def test_postgres_iexact_quirk_does_not_reach_the_login(akadmin):
    from core.accounts.models import User as U

    assert U.objects.filter(username__iexact="akadmın").exists()  # the database alone would have matched
    assert U.objects.filter(email__iexact="admın@example.com").exists()
    assert find_user("akadmın", ["username", "email"]) is None
    assert find_user("admın@example.com", ["username", "email"]) is None
    assert find_user("ADMIN@example.com", ["username", "email"]) == akadmin


def test_failures_and_successes_keep_the_reputation_score(flows, alice, executor):
    flows.authentication()
    attempt(executor, "alice", "wrong", REMOTE_ADDR="198.51.100.30")
    attempt(executor, "alice", PASSWORD, REMOTE_ADDR="198.51.100.30")
    row = Reputation.objects.get(identifier="alice", ip="198.51.100.30")
    assert row.score == 0 and row.last_success is not None
    assert not LoginFailure.objects.filter(pending=True).exists()  # the successful attempt's reservation is gone


def test_window_expiry_frees_the_pair(alice, clock):
    old = clock.now() - timedelta(seconds=DEFAULT_LIMITS.window_seconds + 1)
    LoginFailure.objects.bulk_create([LoginFailure(identifier="alice", ip="192.0.2.1", at=old)
                                      for _ in range(PAIR_LIMIT)])
    assert retry_after("alice", "192.0.2.1") == 0
    LoginFailure.objects.update(at=clock.now())
    assert 0 < retry_after("Alice@example.com", "192.0.2.1") <= DEFAULT_LIMITS.window_seconds
    assert retry_after("alice", "192.0.2.2") == 0  # the same name from elsewhere is not locked


def test_mfa_codes_count_on_the_same_counter(flows, alice, executor):
    """A wrong TOTP code is a failure of the name at that address; a right one releases its reservation."""
    import pyotp

    from core.flows.models import TOTPDevice

    flows.authentication()
    secret = pyotp.random_base32()
    TOTPDevice.objects.create(user=alice, key=secret, confirmed=True, name="phone")
    ex = executor(FLOW, REMOTE_ADDR="198.51.100.40")
    challenge = login(ex, "alice", PASSWORD)
    assert challenge["component"] == "ak-stage-authenticator-validate"
    empty = ex.post(component="ak-stage-authenticator-validate", selected_challenge={"device_class": "totp"})
    assert empty["response_errors"]["code"][0]["code"] == "required"
    assert not LoginFailure.objects.exists()  # choosing a device is no failed attempt
    bad = ex.post(component="ak-stage-authenticator-validate", code="000000")
    assert bad["component"] == "ak-stage-authenticator-validate"
    assert LoginFailure.objects.filter(identifier="alice", pending=False).count() == 1
    done = ex.post(component="ak-stage-authenticator-validate", code=pyotp.TOTP(secret).now())
    assert done["component"] == "xak-flow-redirect"
    assert not LoginFailure.objects.filter(pending=True).exists()


def test_identification_with_password_shares_the_limit(flows, alice, executor):
    flows.authentication(password_in_identification=True)
    ex = executor(FLOW)
    ex.get()
    for _ in range(PAIR_LIMIT):
        ex.post(component="ak-stage-identification", uid_field="ALICE", password="nope")
    answer = ex.post(component="ak-stage-identification", uid_field="alice@example.com", password=PASSWORD)
    assert answer["response_errors"]["non_field_errors"][0]["code"] == "throttled"
    assert LoginFailure.objects.count() == PAIR_LIMIT  # the refusal is no failure, and nothing was checked
