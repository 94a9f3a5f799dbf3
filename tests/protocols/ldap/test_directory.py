"""The directory as authentik's (reference §3.4): the attribute tables, entry by entry."""

from protocols.ldap import directory
from protocols.ldap.directory import Layout

LAYOUT = Layout("DC=ldap,DC=goauthentik,DC=io", 2000, 4000)
USER = {"pk": 7, "username": "alice", "name": "Alice Doe", "is_active": True, "is_superuser": False,
        "email": "alice@example.com", "uid": "abc123", "attributes": {"extra.key": "v", "a/b": ["x", "y"],
                                                                     "flag": True, "home": "/srv/%s", "nested": {"x": 1}},
        "groups_obj": [{"pk": "g-uuid-1", "name": "staff"}], "password_change_date": "2026-01-02T03:04:05.123456Z",
        "date_joined": "2025-12-31T23:00:00+01:00", "last_updated": "2026-02-01T00:00:00Z"}
GROUP = {"pk": "g-uuid-1", "num_pk": 5, "name": "staff", "is_superuser": True, "parent": "g-uuid-0",
         "users": [7, 8], "attributes": {}, "children": ["g-uuid-2"]}
PARENT = {"pk": "g-uuid-0", "num_pk": 1, "name": "everyone", "is_superuser": False, "parent": None, "users": [],
          "attributes": {}, "children": ["g-uuid-1"]}
CHILD = {"pk": "g-uuid-2", "num_pk": 9, "name": "Ops, EU", "is_superuser": False, "parent": "g-uuid-1", "users": [],
         "attributes": {"gidNumber": 9999}, "children": []}
BOB = {"pk": 8, "username": "bob", "name": "Bob", "is_active": False, "is_superuser": True, "email": "", "uid": "u8",
       "attributes": {"uidNumber": 5000, "cn": "Robert"}, "groups_obj": [{"name": "staff"}]}


def test_user_entry_table():
    entry = directory.user_entry(USER, LAYOUT)
    assert entry.dn == "cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io"
    assert entry.as_dict() == {
        "extrakey": ["v"], "a-b": ["x", "y"], "flag": ["true"], "home": ["/srv/alice"],
        "ak-active": ["TRUE"], "ak-superuser": ["FALSE"],
        "memberOf": ["cn=staff,ou=groups,dc=ldap,dc=goauthentik,dc=io"],
        "cn": ["alice"], "sAMAccountName": ["alice"], "uid": ["abc123"], "name": ["Alice Doe"],
        "displayName": ["Alice Doe"], "sn": ["Alice Doe"], "mail": ["alice@example.com"],
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson", "user", "posixAccount",
                        "goauthentik.io/ldap/user"],
        "uidNumber": ["2007"], "gidNumber": ["2007"], "homeDirectory": ["/home/alice"],
        "pwdChangedTime": ["20260102030405Z"], "createTimestamp": ["20251231220000Z"],
        "modifyTimestamp": ["20260201000000Z"],
    }


def test_user_attributes_override_defaults():
    entry = directory.user_entry(BOB, LAYOUT)
    assert entry.get("cn") == ("Robert",)  # user attributes win (authentik)
    assert entry.get("uidNumber") == ("5000",) and entry.get("gidNumber") == ("5000",)
    assert entry.get("ak-active") == ("FALSE",) and entry.get("ak-superuser") == ("TRUE",)
    assert entry.get("mail") == ("",)


def test_group_entry_table():
    entry = directory.group_entry(GROUP, LAYOUT, ["alice", "bob"], ["Ops, EU"], "everyone")
    assert entry.dn == "cn=staff,ou=groups,dc=ldap,dc=goauthentik,dc=io"
    assert entry.as_dict() == {
        "ak-superuser": ["true"],
        "objectClass": ["group", "groupOfUniqueNames", "groupOfNames", "goauthentik.io/ldap/group", "posixGroup"],
        "member": ["cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io", "cn=bob,ou=users,dc=ldap,dc=goauthentik,dc=io",
                   "cn=Ops\\, EU,ou=groups,dc=ldap,dc=goauthentik,dc=io"],
        "memberOf": ["cn=everyone,ou=groups,dc=ldap,dc=goauthentik,dc=io"],
        "cn": ["staff"], "uid": ["g-uuid-1"], "sAMAccountName": ["staff"], "gidNumber": ["4005"],
    }
    assert directory.group_entry(CHILD, LAYOUT, []).get("gidNumber") == ("9999",)


def test_virtual_group_and_containers():
    entry = directory.virtual_group_entry(USER, LAYOUT)
    assert entry.dn == "cn=alice,ou=virtual-groups,dc=ldap,dc=goauthentik,dc=io"
    assert entry.as_dict() == {
        "ak-superuser": ["false"],
        "objectClass": ["group", "groupOfUniqueNames", "groupOfNames", "goauthentik.io/ldap/group", "posixGroup",
                        "goauthentik.io/ldap/virtual-group"],
        "member": ["cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io"], "memberOf": [],
        "cn": ["alice"], "uid": ["abc123"], "sAMAccountName": ["alice"], "gidNumber": ["2007"],
    }
    [users, groups, virtual] = directory.container_entries(LAYOUT)
    assert users.as_dict() == {"distinguishedName": ["ou=users,dc=ldap,dc=goauthentik,dc=io"],
                               "objectClass": ["top", "nsContainer"], "commonName": ["users"]}
    assert groups.dn.startswith("ou=groups,") and virtual.dn.startswith("ou=virtual-groups,")


def test_build_full_and_restricted():
    everything = directory.build([USER, BOB], [PARENT, GROUP, CHILD], LAYOUT)
    dns = [e.dn.split(",", 2)[:2] for e in everything]
    assert len(everything) == 3 + 2 + 3 + 2
    assert ["cn=everyone", "ou=groups"] in dns and ["cn=bob", "ou=virtual-groups"] in dns
    staff = next(e for e in everything if e.dn.startswith("cn=staff"))
    assert len(staff.get("member")) == 3 and staff.get("memberOf") == ("cn=everyone,ou=groups,dc=ldap,dc=goauthentik,dc=io",)
    mine = directory.build([USER, BOB], [PARENT, GROUP, CHILD], LAYOUT, only_user_pk=7)
    assert [e.dn.split(",")[0] for e in mine] == ["ou=users", "ou=groups", "ou=virtual-groups", "cn=alice",
                                                  "cn=staff", "cn=alice"]
    assert next(e for e in mine if e.dn.startswith("cn=staff")).get("member") == (
        "cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io",)


def test_group_members_come_from_users_obj_when_sent():
    """A pushed-down user search leaves the users list short; the group's member list must not shrink."""
    group = {**GROUP, "users_obj": [{"pk": 7, "username": "alice"}, {"pk": 8, "username": "bob"}]}
    entries = directory.build([USER], [group], LAYOUT)
    staff = next(e for e in entries if e.dn.startswith("cn=staff"))
    assert [m.split(",")[0] for m in staff.get("member")] == ["cn=alice", "cn=bob"]
