"""protocols/outpost.py: the authenticate call's schema (AuthRequest, AuthAnswer) and split_mfa, which must split
exactly as authentik's SetSecrets (reference §1.7, internal/outpost/flow/solvers_mfa_test.go)."""

import json

import pytest

from protocols import outpost as p
from protocols.outpost import (
    AuthAnswer,
    AuthGroup,
    AuthRequest,
    AuthResult,
    AuthUser,
    ProtocolError,
    split_mfa,
)

USER = {"pk": 7, "uid": "ab" * 32, "username": "alice", "name": "Alice", "email": "alice@example.com",
        "is_active": True, "is_superuser": False, "groups": [{"pk": "6d1c2b3a-0000-4000-8000-000000000001",
                                                             "name": "staff"}], "attributes": {"team": "x"}}
OK = {"result": "ok", "reason": "authenticated", "user": USER, "session_id": "cd" * 32,
      "has_search_permission": True, "reply_attributes": []}


# --- split_mfa ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given,mfa,expected", [
    ("secret", False, ("secret", "secret")),  # mfa_support off: the code answer is the whole password too
    ("secret;123456", False, ("secret;123456", "secret;123456")),
    ("secret;123456", True, ("secret", "123456")),  # 6 digits
    ("secret;12345678", True, ("secret", "12345678")),  # 8 digits
    ("secret;AbCd1234", True, ("secret", "AbCd1234")),  # 8 letters/digits (a static code)
    ("secret;1234567890", True, ("secret;1234567890", None)),  # 10 digits: no split
    ("secret;12345", True, ("secret;12345", None)),
    ("secret;abcdef", True, ("secret;abcdef", None)),  # 6 letters: not a TOTP code
    ("secret;", True, ("secret;", None)),  # ends with the separator
    ("secret", True, ("secret", None)),
    ("a;b;123456", True, ("a;b", "123456")),  # the LAST separator
    ("a;123456;b", True, ("a;123456;b", None)),
    (";123456", True, ("", "123456")),
    ("secret;１２３４５６", True, ("secret;１２３４５６", None)),  # full-width digits are not digits here
    ("secret;Ab-d1234", True, ("secret;Ab-d1234", None)),
    ("secret;ÄbCd1234", True, ("secret;ÄbCd1234", None)),
    ("", True, ("", None)),
])
def test_split_mfa(given, mfa, expected):
    assert split_mfa(given, mfa) == expected


# --- AuthRequest -------------------------------------------------------------------------------------------------


def test_request_round_trip_and_text():
    req = AuthRequest("alice", "pw;123456", "2001:db8::1")
    assert AuthRequest.from_json(req.to_json()) == req
    assert AuthRequest.from_json(json.dumps(req.to_json())) == req
    assert "pw;123456" not in repr(req) and "9 chars" in repr(req)


@pytest.mark.parametrize("data,named", [
    ({"password": "x", "remote_ip": "10.0.0.1"}, "'username' is missing"),
    ({"username": 1, "password": "x", "remote_ip": "10.0.0.1"}, "'username' must be a string"),
    ({"username": "a", "password": None, "remote_ip": "10.0.0.1"}, "'password' must be a string"),
    ({"username": "a", "password": "x", "remote_ip": "10.0.0.300"}, "'remote_ip'"),
    ({"username": "a", "password": "x", "remote_ip": ""}, "'remote_ip'"),
    ({"username": " ", "password": "x", "remote_ip": "10.0.0.1"}, "'username' is empty"),
    ({"username": "a\x00", "password": "x", "remote_ip": "10.0.0.1"}, "NUL"),
    ({"username": "a", "password": "x" * 5000, "remote_ip": "10.0.0.1"}, "over 4096"),
    ({"username": "a" * 2000, "password": "x", "remote_ip": "10.0.0.1"}, "over 1024"),
    ([], "JSON object"),
    ("{not json", "not JSON"),
])
def test_request_validation_names_the_field(data, named):
    with pytest.raises(ProtocolError, match=named.replace("(", r"\(")) as raised:
        AuthRequest.from_json(data)
    assert "x" * 50 not in str(raised.value), "a long password is never echoed"


def test_a_refused_password_is_never_echoed():
    with pytest.raises(ProtocolError) as raised:
        AuthRequest.from_json({"username": "a", "password": "hunter2" * 1000, "remote_ip": "10.0.0.1"})
    assert "hunter2" not in str(raised.value)


# --- AuthAnswer --------------------------------------------------------------------------------------------------


def test_answer_round_trip():
    answer = AuthAnswer.from_json(OK)
    assert answer.ok and answer.result is AuthResult.OK and answer.result == "ok"
    assert answer.user.username == "alice" and answer.user["username"] == "alice"  # attribute or key
    assert answer.user.get("missing", 3) == 3 and answer.user.groups == (AuthGroup(USER["groups"][0]["pk"], "staff"),)
    assert answer.to_json() == OK
    assert AuthAnswer.from_json(json.dumps(OK)) == answer


@pytest.mark.parametrize("result", [r.value for r in AuthResult if r is not AuthResult.OK])
def test_failed_answers(result):
    data = {"result": result, "reason": "why", "user": None, "session_id": None, "has_search_permission": False,
            "reply_attributes": []}
    answer = AuthAnswer.from_json(data)
    assert not answer.ok and answer.result.value == result and answer.to_json() == data


def test_answer_ignores_fields_it_does_not_know():
    assert AuthAnswer.from_json({**OK, "added_later": 1}).ok


@pytest.mark.parametrize("change,named", [
    ({"result": "maybe"}, "'result' must be one of"),
    ({"result": 1}, "'result' must be a string"),
    ({"reason": None}, "'reason'"),
    ({"user": "alice"}, "'user' must be an object"),
    ({"user": None}, "must name the user"),
    ({"session_id": None}, "must name the user and the session_id"),
    ({"has_search_permission": "yes"}, "'has_search_permission'"),
    ({"reply_attributes": {}}, "'reply_attributes'"),
    ({"user": {**USER, "pk": "7"}}, "'pk' must be an integer"),
    ({"user": {**USER, "pk": True}}, "'pk' must be an integer"),
    ({"user": {**USER, "is_active": 1}}, "'is_active'"),
    ({"user": {**USER, "groups": [{"pk": 1, "name": "x"}]}}, "'pk' must be a string"),
    ({"user": {k: v for k, v in USER.items() if k != "email"}}, "'email' is missing"),
])
def test_answer_validation_names_the_field(change, named):
    with pytest.raises(ProtocolError, match=named):
        AuthAnswer.from_json({**OK, **change})


def test_answers_are_frozen():
    answer = AuthAnswer(AuthResult.INVALID_CREDENTIALS, "Invalid password")
    with pytest.raises(AttributeError):
        answer.result = AuthResult.OK  # type: ignore[misc]
    user = AuthUser.from_json(USER)
    with pytest.raises(AttributeError):
        user.is_superuser = True  # type: ignore[misc]


def test_paths():
    assert p.AUTHENTICATE_PATHS["ldap"].format(pk=3) == "/api/v3/outposts/ldap/3/authenticate/"
    assert p.AUTHENTICATE_PATHS["radius"].format(pk=3) == "/api/v3/outposts/radius/3/authenticate/"
    assert p.AUTHENTICATE_PATHS["ldap"].startswith(p.CONFIG_PATHS["ldap"])
