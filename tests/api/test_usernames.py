"""One set of rules for new user names (core/accounts/usernames.py), on every path that creates or
renames a user: the REST API (users, service accounts), the CSV import, and enrollment (tests/flows).

Refused with a message that names the problem: look-alikes of an existing name (Cyrillic а, dotless ı,
fullwidth, a capital I for an l), zero-width characters and tabs, 300-character names, and a name equal
to another user's email address. Names already stored keep working.
"""

from __future__ import annotations

import pytest

from core.accounts.csv_import import import_users
from core.accounts.models import User
from core.accounts.usernames import canonical, character_problem, find_user

pytestmark = pytest.mark.django_db

# (name, a word its refusal message must contain)
LOOKALIKES_OF_ALICE = [
    ("аlice", "U+0430 CYRILLIC SMALL LETTER A"),
    ("alıce", "U+0131 LATIN SMALL LETTER DOTLESS I"),
    ("ａｌｉｃｅ", "FULLWIDTH"),
    ("AIice", "looks too much like"),
    ("ALICE", "taken"),
    ("al\u200bice", "U+200B ZERO WIDTH SPACE"),
    ("al\tice", "U+0009"),
    ("x" * 300, "150 characters"),
    ("bob@example.com", "email address"),
]


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.com", "pw")


@pytest.mark.parametrize("name, why", LOOKALIKES_OF_ALICE)
def test_api_refuses_lookalikes_and_bad_names(admin, alice, bob, name, why):
    resp = admin.post("/api/v3/core/users/", {"username": name, "name": "x"}, format="json")
    assert resp.status_code == 400, resp.content
    message = " ".join(resp.json()["username"])
    assert why in message or why.lower() in message.lower(), message
    assert User.objects.count() == 3  # akadmin, alice, bob


def test_api_rename_is_checked_but_keeping_a_legacy_name_passes(admin, alice, bob):
    legacy = User.objects.create(username="Alice-legacy")
    resp = admin.patch(f"/api/v3/core/users/{bob.pk}/", {"username": "аlice"}, format="json")
    assert resp.status_code == 400 and "CYRILLIC" in resp.json()["username"][0]
    # a name stored before these rules is not re-judged when the user is edited
    User.objects.filter(pk=legacy.pk).update(username="legacy\tname")
    resp = admin.patch(f"/api/v3/core/users/{legacy.pk}/", {"username": "legacy\tname", "name": "L"}, format="json")
    assert resp.status_code == 200, resp.content
    assert admin.patch(f"/api/v3/core/users/{bob.pk}/", {"username": "robert"}, format="json").status_code == 200


def test_service_account_names_follow_the_rules(admin, alice):
    resp = admin.post("/api/v3/core/users/service_account/", {"name": "аlice"}, format="json")
    assert resp.status_code == 400 and "CYRILLIC" in resp.json()["name"][0]
    assert admin.post("/api/v3/core/users/service_account/", {"name": "backup-bot"},
                      format="json").status_code == 200


def test_csv_import_refuses_lookalikes_with_their_line(alice):
    text = "username,email,name\nbob,bob@example.com,Bob\nbоb,b2@example.com,Look-alike of a row above\n" \
           "аlice,a2@example.com,Look-alike of a user\nalice,new@example.com,An update: fine\n"
    result = import_users(text)
    assert [e.split(":")[0] for e in result.errors] == ["line 3", "line 4"], result.errors
    assert "looks too much like" in result.errors[0] and "CYRILLIC" in result.errors[1]
    assert not User.objects.filter(username="bob").exists()  # all or nothing


def test_good_names_pass(admin, alice):
    for name in ["José", "Zoë Müller", "李雷", "alice.smith", "alice2"]:
        resp = admin.post("/api/v3/core/users/", {"username": name, "name": name}, format="json")
        assert resp.status_code == 201, (name, resp.content)


def test_canonical_form_and_lookup():
    assert canonical(" ＡＬＩＣＥ ") == "alice" and canonical("Straße") == "strasse"
    assert canonical("admın") != canonical("admin")
    assert character_problem("bob smith") is None


def test_lookup_by_any_spelling(alice):
    for spelling in ["alice", "ALICE", "Alice", "ａｌｉｃｅ", "ALICE@EXAMPLE.COM"]:
        assert find_user(spelling, ["username", "email"]) == alice, spelling
    assert find_user("alıce", ["username", "email"]) is None
    assert find_user("ALICE", ["username"], case_insensitive=False) is None
