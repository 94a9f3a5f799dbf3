"""Failed logins can be found by the events API's ``username`` filter (issue 8 item 11): a login_failed
event carries the name as typed and its canonical form, and the filter matches either, along with the
events of the user the name belongs to."""

from __future__ import annotations

import pytest

from core.accounts.models import Group, User
from tests.api.conftest import api_token, bearer
from tests.flows.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(db):
    user = User.objects.create_user("akadmin", "admin@example.com", "pw")
    user.groups.add(Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})[0])
    return bearer(api_token(user, "admin-token"))


def _events(api, username: str) -> list[tuple[str, str]]:
    body = api.get("/api/v3/events/events/", {"username": username, "ordering": "created"}).json()
    return [(e["action"], e["context"].get("username") or e["user"].get("username")) for e in body["results"]]


def test_failed_logins_are_found_by_typed_and_canonical_name(flows, alice, executor, admin_api):
    flows.authentication()
    for typed in ["ALICE", "alice@example.com", "Ａｌｉｃｅ"]:
        login(executor("default-authentication-flow"), typed, "wrong")
    assert login(executor("default-authentication-flow"), "alice", "correct horse")["component"] == \
        "xak-flow-redirect"
    login(executor("default-authentication-flow"), "mallory", "wrong")  # nobody's

    everything = _events(admin_api, "alice")
    assert [e for e in everything if e[0] == "login_failed"] == [
        ("login_failed", "ALICE"), ("login_failed", "alice@example.com"), ("login_failed", "Ａｌｉｃｅ")]
    assert ("login", "alice") in everything
    # the typed spelling finds the same (it is alice's name), and the email too
    assert _events(admin_api, "ALICE") == everything
    assert _events(admin_api, "alice@example.com") == everything
    assert _events(admin_api, "mallory") == [("login_failed", "mallory")]
    assert _events(admin_api, "MALLORY") == [("login_failed", "mallory")]
    assert _events(admin_api, "nobody") == []
