"""The indexed search answers exactly as the scan (``search.matching`` over a plain list): many generated
filters, bases and scopes over a generated directory (users with overriding attributes, nested groups,
a duplicate DN, values differing only in case)."""

import random

from protocols.ldap import codec, directory
from protocols.ldap import dn as dnmod
from protocols.ldap.directory import Layout
from protocols.ldap.index import Indexed
from protocols.ldap.schema import root_dse
from protocols.ldap.search import SCOPE_BASE, SCOPE_ONE, SCOPE_SUBTREE, matching

LAYOUT = Layout("DC=Example,DC=org", 2000, 4000)
ATTRS = ["cn", "uid", "mail", "samaccountname", "memberof", "member", "objectclass", "uidnumber", "gidnumber",
         "name", "displayname", "sn", "homedirectory", "ak-active", "ak-superuser", "description", "flag"]


def make_directory(rng: random.Random):
    users, groups = make_json(rng)
    return [root_dse([LAYOUT.base], "test", dn=LAYOUT.base), *directory.build(users, groups, LAYOUT)]


def make_json(rng: random.Random):
    groups = [{"pk": f"g{g}", "num_pk": g, "name": f"Group {g}" if g % 3 else f"team{g}", "is_superuser": g == 1,
               "parent": f"g{g - 1}" if g % 4 == 3 else None, "users": [],
               "attributes": {"description": "Team" if g % 2 else "team"}, "children": []}
              for g in range(12)]
    for g in groups:
        if g["parent"]:
            groups[int(g["parent"][1:])]["children"].append(g["pk"])
    users = []
    for pk in range(1, 121):
        name = f"User{pk:03d}" if pk % 5 else f"user{pk:03d}"
        attributes = {}
        if pk % 7 == 0:
            attributes["cn"] = f"Override {pk % 3}"
        if pk % 11 == 0:
            attributes["mail"] = ["A@X.org", "a@x.org"]  # equal when folded: one index entry
        if pk % 13 == 0:
            attributes["flag"] = pk % 2 == 0
        if pk % 17 == 0:
            attributes["uidNumber"] = 7
        member_of = rng.sample(groups, rng.randint(0, 3))
        for g in member_of:
            g["users"].append(pk)
        users.append({"pk": pk, "username": name, "name": f"Name {pk % 10}", "email": f"u{pk}@Example.org",
                      "uid": f"uid{pk}", "is_active": pk % 9 != 0, "is_superuser": pk % 19 == 0,
                      "attributes": attributes, "groups_obj": [{"name": g["name"]} for g in member_of]})
    users.append(dict(users[0], pk=999))  # the same username twice: two entries with one DN
    return users, groups


def values_of(entries, attr, rng):
    pool = [v for e in entries for v in e.get(attr)] or ["none"]
    value = rng.choice(pool + ["missing"])
    return rng.choice([value, value.upper(), value.lower()])


def random_filter(entries, rng: random.Random, depth: int = 0):
    kinds = ["eq", "eq", "eq", "present", "sub", "ge", "le"] + (["and", "and", "or", "not"] if depth < 3 else [])
    kind = rng.choice(kinds)
    attr = rng.choice(ATTRS)
    if kind in ("and", "or"):
        return (kind, tuple(random_filter(entries, rng, depth + 1) for _ in range(rng.randint(0, 3))))
    if kind == "not":
        return ("not", random_filter(entries, rng, depth + 1))
    if kind == "present":
        return ("present", attr)
    value = values_of(entries, attr, rng).casefold()
    if kind == "sub":
        return ("sub", attr, value[:2] or None, (), value[-1:] or None)
    return (kind, attr, value)


def test_indexed_search_equals_the_scan():
    rng = random.Random(9)
    entries = make_directory(rng)
    indexed = Indexed(entries)
    bases = [LAYOUT.base, "dc=org", "", LAYOUT.users_dn, LAYOUT.groups_dn, LAYOUT.virtual_groups_dn,
             LAYOUT.user_dn("User001"), LAYOUT.group_dn("Group 2"), f"ou=nothing,{LAYOUT.base}",
             "CN=USER001,OU=Users,DC=example,DC=ORG"]
    keys = [dnmod.key(b) for b in bases]
    checked = narrowed = 0
    for _ in range(3000):
        flt = random_filter(entries, rng)
        base_key, scope = rng.choice(keys), rng.choice([SCOPE_BASE, SCOPE_ONE, SCOPE_SUBTREE])
        expected = matching(entries, base_key, scope, flt)
        got = matching(indexed, base_key, scope, flt)
        assert [id(e) for e in got] == [id(e) for e in expected], (flt, base_key, scope)
        checked += 1
        narrowed += indexed.candidates(flt) is not None
    assert checked == 3000 and narrowed > 500  # the indexed path was taken often


def test_equality_lookups_use_the_index_and_find_what_the_scan_finds():
    entries = make_directory(random.Random(1))
    indexed = Indexed(entries)
    users = dnmod.key(LAYOUT.users_dn)
    for flt in [("eq", "cn", "user005"), ("eq", "cn", "override 1"), ("eq", "mail", "a@x.org"),
                ("and", (("eq", "objectclass", "user"), ("eq", "memberof", dnmod.normalize(LAYOUT.group_dn("team3"))))),
                ("or", (("eq", "uid", "uid3"), ("eq", "uid", "uid4"))), ("eq", "uidnumber", "7"),
                ("eq", "cn", "user001")]:
        assert indexed.candidates(flt) is not None
        assert matching(indexed, users, SCOPE_SUBTREE, flt) == matching(entries, users, SCOPE_SUBTREE, flt)
    assert len(matching(indexed, users, SCOPE_SUBTREE, ("eq", "cn", "user001"))) == 2  # the duplicate DN
    assert indexed.by_dn(dnmod.key(LAYOUT.groups_dn))[0].get("objectClass") == ("top", "nsContainer")


def test_build_keeps_values_as_ber_and_shares_names():
    """The values are held as the PartialAttributes sent (bytes), decoded back equal; the name tuples and the
    DN parts are shared by the entries of one build."""
    entries = make_directory(random.Random(2))
    users = [e for e in entries if e.dn.endswith(LAYOUT.users_dn) and e.dn != LAYOUT.users_dn]
    assert users[0].names is users[1].names or users[0].attributes != users[1].attributes
    assert users[0].dn_key[1] is users[1].dn_key[1]
    for entry in entries:
        assert entry.ber == b"".join(codec.partial_attribute(n, v) for n, v in entry.attributes)
        assert len(entry.ends) == 4 * len(entry.keys)
    group = next(e for e in entries if e.get("member") and e.dn.endswith(LAYOUT.groups_dn))
    assert any(u.dn == group.get("member")[0] for u in users)


def test_restricted_view_from_the_index_equals_the_restricted_build():
    rng = random.Random(3)
    entries = make_directory(rng)
    indexed = Indexed(entries)
    users = [e for e in entries if e.dn.endswith("," + LAYOUT.users_dn)]
    import json
    with_groups = 0
    for entry in users[:60]:
        username = entry.get("sAMAccountName")[0]
        # the same JSON make_directory built from: rebuild it restricted to this user the classic way
        rng2 = random.Random(3)
        users_json, groups_json = make_json(rng2)
        pk = next(u["pk"] for u in users_json if u["username"] == username)
        if sum(u["username"] == username for u in users_json) > 1:
            continue  # the duplicate DN: the classic build tells the two apart by pk, the index cannot
        expected = [root_dse([LAYOUT.base], "test", dn=LAYOUT.base),
                    *directory.build(users_json, groups_json, LAYOUT, only_user_pk=pk)]
        got = directory.restricted(indexed, LAYOUT, username)
        assert [(e.dn, e.as_dict()) for e in got] == [(e.dn, e.as_dict()) for e in expected], json.dumps(username)
        with_groups += len(got) > 6  # root, 3 containers, the user, its virtual group: and groups
    assert with_groups > 20
