"""RADIUS reply attributes in the authenticate answer (core/providers/radius/reply.py): VLAN by group."""

from __future__ import annotations

import logging

from core.accounts.models import Group
from core.providers.radius.reply import reply_attributes
from tests.api.test_outpost_authenticate import answer, setup  # noqa: F401 - the fixture

VLAN = [["Tunnel-Type:1", "VLAN"], ["Tunnel-Medium-Type:1", "IEEE-802"], ["Tunnel-Private-Group-Id:1", "42"]]


def test_no_attributes_by_default(setup):  # noqa: F811
    assert answer(setup, "radius").reply_attributes == ()
    assert reply_attributes(setup["alice"]) == []


def test_vlan_by_group_in_the_accept(setup):  # noqa: F811
    setup["staff"].attributes = {"radius_reply_attributes": VLAN}
    setup["staff"].save()
    got = answer(setup, "radius")
    assert got.ok
    assert [(a["name"], a["value"]) for a in got.reply_attributes] == [tuple(p) for p in VLAN]
    assert answer(setup, "ldap").reply_attributes == ()  # LDAP answers never carry them
    assert answer(setup, "radius", password="wrong").reply_attributes == ()


def test_first_group_by_name_and_user_wins(setup):  # noqa: F811
    alice = setup["alice"]
    a_team = Group.objects.create(name="a-team", attributes={"radius_reply_attributes": {"Filter-Id": "a"}})
    setup["staff"].attributes = {"radius_reply_attributes": {"Filter-Id": "staff"}}
    setup["staff"].save()
    alice.groups.add(a_team)
    assert reply_attributes(alice) == [{"name": "Filter-Id", "value": "a"}]
    alice.attributes = {"radius_reply_attributes": [["Session-Timeout", 3600]]}
    alice.save()
    assert reply_attributes(alice) == [{"name": "Session-Timeout", "value": 3600}]


def test_bad_entries_left_out_and_named(setup, caplog):  # noqa: F811
    alice = setup["alice"]
    alice.attributes = {"radius_reply_attributes": [["No-Such-Attr", "x"], ["Filter-Id", {"x": 1}],
                                                    ["Tunnel-Type:99", "VLAN"], "junk", ["Filter-Id", "ok"],
                                                    ["Session-Timeout", True]]}
    alice.save()
    with caplog.at_level(logging.WARNING, "gatehouse.providers.radius"):
        assert reply_attributes(alice) == [{"name": "Filter-Id", "value": "ok"}]
    problems = " ".join(r.problem for r in caplog.records)
    assert "No-Such-Attr" in problems and "tag" in problems
