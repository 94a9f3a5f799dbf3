"""RFC 4514 DNs, RFC 4515 filter evaluation and attribute selection."""

import pytest

from protocols.ldap import dn
from protocols.ldap.connection import Connection
from protocols.ldap.search import Entry, select
from tests.protocols.ldap import client


def test_dn_parse_escape_compare():
    assert dn.parse("cn=Bob\\, Jr, OU=Users,dc=ex") == ((("cn", "Bob, Jr"),), (("ou", "Users"),), (("dc", "ex"),))
    assert dn.key("CN=Alice,ou=USERS,DC=Ex") == dn.key("cn=alice, ou=users, dc=ex")
    assert dn.parse("cn=a+uid=b,dc=ex")[0] == (("cn", "a"), ("uid", "b"))
    assert dn.parse("cn=\\41b\\c3\\a9,dc=ex")[0] == (("cn", "Abé"),)
    assert dn.parse("") == ()
    for value in ["a,b", "#lead", " both ", "x+y=z;<>\"\\", "plain"]:
        text = f"cn={dn.escape_value(value)},dc=ex"
        assert dn.parse(text)[0] == (("cn", value),), text
    assert dn.is_within(dn.key("cn=a,ou=users,dc=ex"), dn.key("dc=ex"))
    assert not dn.is_within(dn.key("cn=a,ou=users,dc=other"), dn.key("dc=ex"))
    assert dn.first_value(dn.parse("uid=x,cn=bob,ou=users,dc=ex"), "cn") == "bob"


@pytest.mark.parametrize("bad", ["nonsense", "cn=a,", "=x", "cn=a\\", "c n=a", "cn=a\"b"])
def test_dn_errors(bad):
    with pytest.raises(dn.DNError):
        dn.parse(bad)


ALICE = Entry("cn=alice,ou=users,dc=ex", [
    ("cn", ["alice"]), ("objectClass", ["top", "person", "user"]), ("mail", ["Alice@Example.COM"]),
    ("uidNumber", ["2005"]), ("memberOf", ["cn=admins,ou=groups,dc=ex"]), ("createTimestamp", ["20260101000000Z"]),
])


@pytest.mark.parametrize("flt,expected", [
    ("(cn=ALICE)", True), ("(CN=alice)", True), ("(cn=bob)", False),
    ("(mail=alice@example.com)", True), ("(mail~=ALICE@example.com)", True),
    ("(cn=al*)", True), ("(cn=*ic*)", True), ("(cn=*ce)", True), ("(cn=a*i*e)", True), ("(cn=a*x*e)", False),
    ("(cn=alice*e)", False), ("(mail=*)", True), ("(sn=*)", False), ("(objectClass=*)", True),
    ("(uidNumber>=2000)", True), ("(uidNumber>=10000)", False), ("(uidNumber<=2005)", True), ("(uidNumber<=999)", False),
    ("(createTimestamp>=20250101000000Z)", True),
    ("(&(objectClass=user)(|(cn=bob)(cn=alice)))", True), ("(&(objectClass=user)(!(cn=alice)))", False),
    ("(memberOf=CN=admins,ou=groups,dc=ex)", True), ("(!(|(cn=x)(cn=y)))", True),
])
def test_filter_evaluation(flt, expected):
    conn = Connection()
    [req] = conn.receive(client.search(1, "dc=ex", flt))
    out = client.decode_all(b"".join(conn.search(req, lambda: [ALICE])[0]))
    assert (out[0].get("dn") == ALICE.dn) is expected, (flt, out)


def test_select_attributes():
    names = lambda attrs, **kw: [n for n, _ in select(ALICE, attrs, **kw)]  # noqa: E731
    assert "createTimestamp" not in names(["*"]) and "cn" in names([])
    assert names(["+"]) == ["createTimestamp"]
    assert len(names(["*", "+"])) == 6
    assert names(["1.1"]) == []
    assert names(["CN", "Mail"]) == ["cn", "mail"]
    assert names(["cn,mail"]) == ["cn", "mail"]  # comma-joined, split as authentik does
    assert names(["createtimestamp"]) == ["createTimestamp"]
    assert select(ALICE, ["cn"], types_only=True) == [("cn", [])]
