"""RADIUS property mappings (core/providers/radius/mappings.py): expressions that set the Access-Accept's reply
attributes, their API (/api/v3/propertymappings/provider/radius/), the provider's ``property_mappings``, a
blueprint, a failing mapping, and a vendor attribute through ``define_attribute`` encoded by the codec."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pyrad.packet import AuthPacket

from core.accounts.models import Group
from core.blueprints.apply import BUILTIN_DIR, apply_file
from core.blueprints.importer import Importer
from core.blueprints.loader import load
from core.events.models import Event
from core.providers.radius.mappings import RadiusPacket, accept_attributes
from core.providers.radius.models import RadiusProvider, RadiusProviderPropertyMapping
from outpost.radius.handlers import reply_attributes as outpost_pairs
from protocols.outpost import RADIUS_CHALLENGE_PATH
from protocols.radius.codec import Code, decode_request, dictionary, encode_reply, encode_request
from tests.api.test_outpost_authenticate import answer, setup  # noqa: F401 - the fixture
from tests.api.test_radius_challenge import NETWORK_PASSWORD, chap, network_password

from .conftest import api_token, bearer

VLAN_BY_GROUP = """
for group in user.groups.order_by("name"):
    vlan = group.attributes.get("vlan")
    if vlan:
        packet["Tunnel-Type:1"] = "VLAN"
        packet["Tunnel-Medium-Type:1"] = "IEEE-802"
        packet["Tunnel-Private-Group-Id:1"] = str(vlan)
        break
return packet
"""
CISCO = """
define_attribute(vendor_code=9, vendor_name="Cisco", attribute_name="AV-Pair", attribute_code=1,
                 attribute_type="string")
packet["Cisco-AV-Pair"] = ["shell:priv-lvl=15", f"user={request.user.username}"]
define_attribute(14988, "Mikrotik", "Rate-Limit", 8, "string")
packet.AddAttribute("Mikrotik-Rate-Limit", "10M/10M")
return packet
"""


def attach(provider, name: str, expression: str) -> RadiusProviderPropertyMapping:
    mapping = RadiusProviderPropertyMapping.objects.create(name=name, expression=expression)
    provider.property_mappings.add(mapping)
    return mapping


def pairs(attributes) -> list[tuple]:
    return [(a["name"], a["value"]) for a in attributes]


def encoded(attributes) -> AuthPacket:
    """The Access-Accept the outpost would send with these reply_attributes, decoded by pyrad."""
    request = decode_request(encode_request(Code.ACCESS_REQUEST, b"s3cret", 1, os.urandom(16),
                                            [("User-Name", "alice")], password="x"), b"s3cret")
    items, problems = outpost_pairs(attributes)
    assert problems == []
    return AuthPacket(packet=encode_reply(request, Code.ACCESS_ACCEPT, b"s3cret", items), dict=dictionary(),
                      secret=b"s3cret")


def test_vlan_from_the_users_group(setup):  # noqa: F811
    setup["staff"].attributes = {"vlan": 42}
    setup["staff"].save()
    attach(setup["radius"], "vlan by group", VLAN_BY_GROUP)
    got = answer(setup, "radius")
    assert got.ok
    assert pairs(got.reply_attributes) == [("Tunnel-Type:1", "VLAN"), ("Tunnel-Medium-Type:1", "IEEE-802"),
                                           ("Tunnel-Private-Group-Id:1", "42")]
    reply = encoded(list(got.reply_attributes))
    assert (reply["Tunnel-Type"], reply["Tunnel-Private-Group-Id"]) == (["VLAN"], ["42"])
    assert answer(setup, "ldap").reply_attributes == ()


def test_a_mapping_wins_over_the_groups_radius_reply_attributes(setup):  # noqa: F811
    setup["staff"].attributes = {"vlan": 7, "radius_reply_attributes": [["Tunnel-Private-Group-Id:1", "99"],
                                                                        ["Filter-Id", "staff"]]}
    setup["staff"].save()
    attach(setup["radius"], "vlan by group", VLAN_BY_GROUP)
    got = pairs(accept_attributes(setup["radius"], setup["alice"]))
    assert ("Filter-Id", "staff") in got and ("Tunnel-Private-Group-Id:1", "7") in got
    assert ("Tunnel-Private-Group-Id:1", "99") not in got


def test_vendor_attributes_through_define_attribute(setup):  # noqa: F811
    attach(setup["radius"], "cisco and mikrotik", CISCO)
    got = answer(setup, "radius")
    assert got.ok
    assert list(got.reply_attributes) == [
        {"name": "Cisco-AV-Pair", "value": "shell:priv-lvl=15", "vendor": 9, "code": 1, "type": "string"},
        {"name": "Cisco-AV-Pair", "value": "user=alice", "vendor": 9, "code": 1, "type": "string"},
        {"name": "Mikrotik-Rate-Limit", "value": "10M/10M", "vendor": 14988, "code": 8, "type": "string"}]
    reply = encoded(list(got.reply_attributes))
    assert reply[(9, 1)] == [b"shell:priv-lvl=15", b"user=alice"] and reply[(14988, 8)] == [b"10M/10M"]


def test_chap_accept_carries_the_mapping_attributes(setup):  # noqa: F811
    setup["staff"].attributes = {"vlan": 5}
    setup["staff"].save()
    attach(setup["radius"], "vlan by group", VLAN_BY_GROUP)
    network_password(setup["alice"])
    path = RADIUS_CHALLENGE_PATH.format(pk=setup["radius"].pk)
    got = bearer(setup["radius-key"]).post(path, json.dumps(chap("alice", NETWORK_PASSWORD)),
                                           content_type="application/json").json()
    assert got["result"] == "ok" and ("Tunnel-Private-Group-Id:1", "5") in pairs(got["reply_attributes"])


@pytest.mark.parametrize("expression,error", [
    ('packet["No-Such-Attribute"] = "x"\nreturn packet', "not in the RADIUS dictionary"),
    ("return 1 / 0", "ZeroDivisionError"),
    ('return "a string"', "returned str"),
    ('packet["Session-Timeout"] = {"a": 1}\nreturn packet', "expected [attribute name, string or integer]"),
    ('define_attribute(9, "Cisco", "AV-Pair", 1, "string")\npacket["Cisco-AV-Pair"] = "x" * 250\n'
     "return packet", "more than 247"),
    ('define_attribute(0, "Bad", "Vendor", 1, "string")', "vendor_code 0"),
])
def test_a_failing_mapping_is_skipped_with_an_event(setup, expression, error):  # noqa: F811
    attach(setup["radius"], "a good one", 'packet["Filter-Id"] = "ok"\nreturn packet')
    attach(setup["radius"], "b broken", 'packet["Session-Timeout"] = 60\n' + expression)
    got = answer(setup, "radius")
    assert got.ok  # the login is not refused for an administrator's mistake
    assert pairs(got.reply_attributes) == [("Filter-Id", "ok")]  # nothing half-set by the failing one
    event = Event.objects.filter(action="configuration_error").latest("created")
    assert event.context["mapping"] == "b broken" and error in event.context["message"], event.context


def test_a_mapping_past_its_timeout_is_skipped(setup, monkeypatch):  # noqa: F811
    from core.providers.radius import mappings

    monkeypatch.setattr(mappings, "MAPPING_TIMEOUT", 0.5)
    attach(setup["radius"], "slow", "while True:\n    pass")
    got = answer(setup, "radius")
    assert got.ok and got.reply_attributes == ()
    event = Event.objects.filter(action="configuration_error").latest("created")
    assert event.context["mapping"] == "slow" and "Timeout" in event.context["message"]


def test_returning_nothing_or_a_dict(setup):  # noqa: F811
    attach(setup["radius"], "a", 'packet["Filter-Id"] = "a"')
    attach(setup["radius"], "b", 'return {"Session-Timeout": 3600, "Reply-Message": f"hi {user.username}"}')
    assert pairs(accept_attributes(setup["radius"], setup["alice"])) == [
        ("Filter-Id", "a"), ("Session-Timeout", 3600), ("Reply-Message", "hi alice")]


def test_packet_checks_what_is_set():
    packet = RadiusPacket()
    packet["Filter-Id"] = "x"
    assert packet["Filter-Id"] == ["x"] and "Filter-Id" in packet and packet.get("Nope") is None
    with pytest.raises(KeyError, match="define_attribute"):
        packet["Cisco-AV-Pair"] = "x"
    with pytest.raises(ValueError, match="attribute_type"):
        packet.define_attribute(9, "Cisco", "AV-Pair", 1, "float")
    packet.define_attribute(9, "Cisco", "Priv", 2, "integer")
    with pytest.raises(ValueError, match="not a valid integer value"):
        packet["Cisco-Priv"] = "high"


def test_api_and_the_providers_property_mappings(setup, admin):  # noqa: F811
    url = "/api/v3/propertymappings/provider/radius/"
    created = admin.post(url, {"name": "m1", "expression": 'packet["Filter-Id"] = "api"\nreturn packet'},
                         format="json")
    assert created.status_code == 201, created.content
    assert created.json()["component"] == "ak-property-mapping-provider-radius-form"
    pk = created.json()["pk"]
    for bad in ("import os", "return (", "return packet.__class__"):
        refused = admin.post(url, {"name": "bad", "expression": bad}, format="json")
        assert refused.status_code == 400 and "expression" in refused.json(), bad
    alice_api = bearer(api_token(setup["alice"], "alice-token"))
    assert alice_api.get(url).status_code == 403  # expressions are for superusers only
    provider_url = f"/api/v3/providers/radius/{setup['radius'].pk}/"
    patched = admin.patch(provider_url, {"property_mappings": [pk]}, format="json")
    assert patched.status_code == 200 and patched.json()["property_mappings"] == [pk]
    assert pairs(answer(setup, "radius").reply_attributes) == [("Filter-Id", "api")]
    from core.oidc.models import ScopeMapping

    scope = ScopeMapping.objects.create(name="openid-ish", scope_name="openid", expression="return {}")
    refused = admin.patch(provider_url, {"property_mappings": [pk, str(scope.pk)]}, format="json")
    assert refused.status_code == 400 and "not a RADIUS property mapping" in str(refused.json())
    assert admin.delete(f"{url}{pk}/").status_code == 204
    assert answer(setup, "radius").reply_attributes == ()


def test_blueprint_creates_and_attaches_a_mapping(db):
    apply_file(BUILTIN_DIR / "10-flow-default-authentication-flow.yaml")
    path = Path(__file__).resolve().parents[2] / "configs" / "blueprints" / "radius.yaml"
    env = {"RADIUS_SHARED_SECRET": "a-long-random-secret", "RADIUS_CLIENT_NETWORKS": "10.1.0.0/16"}
    Importer(load(path.read_text(), source=str(path)), env=env).apply()
    provider = RadiusProvider.objects.get(name="wifi-radius")
    mapping = RadiusProviderPropertyMapping.objects.get(name="Wi-Fi: VLAN from the user's vlan attribute")
    assert list(provider.property_mappings.all()) == [mapping.propertymapping_ptr]
    from core.accounts.models import User

    user = User.objects.create_user("erin", "erin@example.com", "pw", attributes={"vlan": 30})
    user.groups.add(Group.objects.get(name="wifi-vlan-20"))
    got = pairs(accept_attributes(provider, user))
    assert ("Tunnel-Private-Group-Id:1", "30") in got and ("Tunnel-Private-Group-Id:1", "20") not in got
    other = User.objects.create_user("fred", "fred@example.com", "pw")
    other.groups.add(Group.objects.get(name="wifi-vlan-20"))
    assert ("Tunnel-Private-Group-Id:1", "20") in pairs(accept_attributes(provider, other))
    assert not Importer(load(path.read_text(), source=str(path)), env=env).apply().changed


def test_check_access_carries_the_attributes_as_authentik_does(setup):  # noqa: F811
    """authentik's outpost reads ``attributes``: base64 of a RADIUS packet it parses with the shared secret."""
    import base64

    from rest_framework.test import APIClient

    client = APIClient(HTTP_X_AUTHENTIK_OUTPOST_TOKEN=setup["radius-key"])
    client.force_login(setup["alice"])
    url = f"/api/v3/outposts/radius/{setup['radius'].pk}/check_access/?app_slug=radius-app"
    assert client.get(url).json()["attributes"] == ""
    attach(setup["radius"], "cisco and mikrotik", CISCO)
    body = client.get(url).json()
    assert body["access"]["passing"] is True
    packet = AuthPacket(packet=base64.b64decode(body["attributes"]), dict=dictionary(), secret=b"s3cret")
    assert packet[(9, 1)] == [b"shell:priv-lvl=15", b"user=alice"] and packet[(14988, 8)] == [b"10M/10M"]
