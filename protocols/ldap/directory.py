"""The directory as authentik's LDAP outpost presents it (reference §3.1, §3.4): pure functions from the core's
``/api/v3/core/users/`` and ``/core/groups/`` objects to entries.

DNs: ``cn=<username>,ou=users,<base>``, ``cn=<group name>,ou=groups,<base>``, one virtual group per user at
``cn=<username>,ou=virtual-groups,<base>``; the containers ``ou=users``, ``ou=groups`` and
``ou=virtual-groups`` (``nsContainer``). The base is lowercased as authentik does. Unlike authentik the cn
value is escaped (RFC 4514), so a group called ``Admins, EU`` still has a DN that parses.

User entry: the user's ``attributes`` first (keys with ``/`` -> ``-`` and ``.`` removed, lists multi-valued,
booleans ``true``/``false``, ``%s`` replaced by the username; nested objects are skipped: LDAP has no type
for them), then authentik's defaults for every name not already there (case-insensitive), so user
attributes override defaults. Groups the same with their own table; ``ak-superuser`` is uppercase on users
and lowercase on groups, as authentik (quirk kept: clients compare these strings).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from protocols.ldap import dn as dnmod
from protocols.ldap.dn import escape_value
from protocols.ldap.index import Indexed
from protocols.ldap.search import SCOPE_ONE, Entry

USER_CLASSES = ("top", "person", "organizationalPerson", "inetOrgPerson", "user", "posixAccount",
                "goauthentik.io/ldap/user")
GROUP_CLASSES = ("group", "groupOfUniqueNames", "groupOfNames", "goauthentik.io/ldap/group", "posixGroup")
VIRTUAL_GROUP_CLASS = "goauthentik.io/ldap/virtual-group"
VIRTUAL_GROUP_CLASSES = (*GROUP_CLASSES, VIRTUAL_GROUP_CLASS)
CONTAINER_CLASSES = ("top", "nsContainer")


@dataclass(frozen=True)
class Layout:
    """A provider's DN scheme and number ranges (from ``/api/v3/outposts/ldap/``)."""

    base_dn: str
    uid_start_number: int = 2000
    gid_start_number: int = 4000

    @property
    def base(self) -> str:
        return self.base_dn.lower()

    @property
    def users_dn(self) -> str:
        return f"ou=users,{self.base}"

    @property
    def groups_dn(self) -> str:
        return f"ou=groups,{self.base}"

    @property
    def virtual_groups_dn(self) -> str:
        return f"ou=virtual-groups,{self.base}"

    def user_dn(self, username: str) -> str:
        return f"cn={escape_value(username)},{self.users_dn}"

    def group_dn(self, name: str) -> str:
        return f"cn={escape_value(name)},{self.groups_dn}"

    def virtual_group_dn(self, username: str) -> str:
        return f"cn={escape_value(username)},{self.virtual_groups_dn}"

    @classmethod
    def of(cls, provider: dict) -> Layout:
        return _layout(cls, str(provider.get("base_dn") or "DC=ldap,DC=goauthentik,DC=io"),
                       int(provider.get("uid_start_number") or 2000), int(provider.get("gid_start_number") or 4000))


@functools.lru_cache(maxsize=64)  # one per provider setting: every search and bind asks for its provider's
def _layout(cls: type[Layout], base_dn: str, uid_start: int, gid_start: int) -> Layout:
    return cls(base_dn, uid_start, gid_start)


def _scalar(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def attributes_to_ldap(attributes: dict | None, username: str = "") -> list[tuple[str, list[str]]]:
    """authentik's AttributesToLDAP: flatten a user's or group's JSON attributes into LDAP attributes."""
    out = []
    for key, value in (attributes or {}).items():
        name = str(key).replace("/", "-").replace(".", "")
        if not name:
            continue
        items = value if isinstance(value, list) else [value]
        values = [s.replace("%s", username) if username else s for s in (_scalar(v) for v in items) if s is not None]
        if values:
            out.append((name, values))
    return out


def generalized_time(value) -> str | None:
    """ISO 8601 from the API -> GeneralizedTime ``YYYYMMDDHHMMSSZ`` (UTC)."""
    if not value:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return stamp.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%SZ")


def _merge(first: list[tuple[str, list[str]]], defaults: Iterable[tuple[str, list[str] | None]]):
    seen = {name.lower() for name, _ in first}
    out = list(first)
    for name, values in defaults:
        if values is None or name.lower() in seen:
            continue
        out.append((name, values))
        seen.add(name.lower())
    return out


def _flag(value: bool, upper: bool) -> list[str]:
    text = "true" if value else "false"
    return [text.upper() if upper else text]


def user_numbers(user: dict, layout: Layout) -> tuple[str, str]:
    attributes = user.get("attributes") or {}
    uid = _scalar(attributes.get("uidNumber")) or str(layout.uid_start_number + int(user["pk"]))
    gid = _scalar(attributes.get("gidNumber")) or uid
    return uid, gid


def user_entry(user: dict, layout: Layout, group_names: Iterable[str] | None = None, pool: dict | None = None) -> Entry:
    """``group_names``: the user's direct groups (default: ``groups_obj`` from the API)."""
    username = str(user["username"])
    if group_names is None:
        group_names = [g.get("name", "") for g in user.get("groups_obj") or []]
    uid_number, gid_number = user_numbers(user, layout)
    name = str(user.get("name") or "")
    defaults = [
        ("ak-active", _flag(bool(user.get("is_active", True)), True)),
        ("ak-superuser", _flag(bool(user.get("is_superuser")), True)),
        ("memberOf", [layout.group_dn(g) for g in group_names]),
        ("cn", [username]),
        ("sAMAccountName", [username]),
        ("uid", [str(user.get("uid") or "")]),
        ("name", [name]),
        ("displayName", [name]),
        ("sn", [name]),
        ("mail", [str(user.get("email") or "")]),
        ("objectClass", USER_CLASSES),  # one shared tuple for every user
        ("uidNumber", [uid_number]),
        ("gidNumber", [gid_number]),
        ("homeDirectory", [f"/home/{username}"]),
    ]
    stamps = [("pwdChangedTime", user.get("password_change_date")), ("createTimestamp", user.get("date_joined")),
              ("modifyTimestamp", user.get("last_updated"))]
    defaults += [(n, [t]) if (t := generalized_time(v)) else (n, None) for n, v in stamps]
    return Entry(layout.user_dn(username), _merge(attributes_to_ldap(user.get("attributes"), username), defaults),
                 pool=pool)


def group_entry(group: dict, layout: Layout, member_usernames: Iterable[str], child_names: Iterable[str] = (),
                parent_name: str | None = None, pool: dict | None = None) -> Entry:
    name = str(group["name"])
    attributes = group.get("attributes") or {}
    gid = _scalar(attributes.get("gidNumber")) or str(layout.gid_start_number + int(group.get("num_pk") or 0))
    defaults = [
        ("ak-superuser", _flag(bool(group.get("is_superuser")), False)),
        ("objectClass", GROUP_CLASSES),
        ("member", [layout.user_dn(u) for u in member_usernames] + [layout.group_dn(c) for c in child_names]),
        ("memberOf", [layout.group_dn(parent_name)] if parent_name else []),
        ("cn", [name]),
        ("uid", [str(group.get("pk") or "")]),
        ("sAMAccountName", [name]),
        ("gidNumber", [gid]),
    ]
    return Entry(layout.group_dn(name), _merge(attributes_to_ldap(attributes), defaults), pool=pool)


def virtual_group_entry(user: dict, layout: Layout, pool: dict | None = None) -> Entry:
    username = str(user["username"])
    _uid, gid = user_numbers(user, layout)
    return Entry(layout.virtual_group_dn(username), [
        ("ak-superuser", ["false"]),
        ("objectClass", VIRTUAL_GROUP_CLASSES),
        ("member", [layout.user_dn(username)]),
        ("memberOf", []),
        ("cn", [username]),
        ("uid", [str(user.get("uid") or "")]),
        ("sAMAccountName", [username]),
        ("gidNumber", [gid]),
    ], pool=pool)


def container_entries(layout: Layout, pool: dict | None = None) -> list[Entry]:
    return [Entry(dn, [("distinguishedName", [dn]), ("objectClass", list(CONTAINER_CLASSES)), ("commonName", [ou])],
                  pool=pool)
            for dn, ou in ((layout.users_dn, "users"), (layout.groups_dn, "groups"),
                           (layout.virtual_groups_dn, "virtual-groups"))]


def build(users: list[dict], groups: list[dict], layout: Layout, *, only_user_pk: int | None = None) -> list[Entry]:
    """Every entry of the directory: containers, users, groups, virtual groups.

    ``only_user_pk`` (a bound user without the search permission, reference §3.3): only that user, its
    virtual group and the groups it is in, each with the member list reduced to that user.

    The entries share equal strings and value tuples (one pool per build, dropped after it): a user's DN
    in the member lists is its entry's DN string, every user's objectClass is one tuple."""
    if only_user_pk is None:
        builder = Builder(layout)
        builder.add_users(users)
        return builder.finish(groups)
    pool: dict = {}
    by_uuid = {str(g.get("pk")): g for g in groups}
    if only_user_pk is not None:
        users = [u for u in users if u.get("pk") == only_user_pk]
    usernames = {u.get("pk"): str(u["username"]) for u in users}
    entries = container_entries(layout, pool)
    entries += [user_entry(u, layout, pool=pool) for u in users]
    for group in groups:
        members = [name for pk, name in _members(group, usernames) if only_user_pk is None or pk == only_user_pk]
        if only_user_pk is not None and not members:
            continue
        parent = by_uuid.get(str(group.get("parent"))) if group.get("parent") else None
        children = [] if only_user_pk is not None else [by_uuid[str(c)]["name"] for c in group.get("children") or []
                                                          if str(c) in by_uuid]
        entries.append(group_entry(group, layout, members, children,
                                   parent["name"] if parent else group.get("parent_name"), pool))
    entries += [virtual_group_entry(u, layout, pool) for u in users]
    return entries


class Builder:
    """``build`` of the whole directory in steps, so the core's JSON need not be held all at once: the users
    a page at a time (each page's JSON can go once added), then the groups. ``finish`` returns the entries
    in ``build``'s order (containers, users, groups, virtual groups)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self._pool: dict = {}
        self._users: list[Entry] = []
        self._virtual: list[Entry] = []
        self._usernames: dict = {}

    def add_users(self, users: Iterable[dict]) -> None:
        layout, pool = self.layout, self._pool
        for user in users:
            self._usernames[user.get("pk")] = str(user["username"])
            self._users.append(user_entry(user, layout, pool=pool))
            self._virtual.append(virtual_group_entry(user, layout, pool))

    def finish(self, groups: list[dict]) -> list[Entry]:
        layout, pool = self.layout, self._pool
        by_uuid = {str(g.get("pk")): g for g in groups}
        entries = container_entries(layout, pool) + self._users
        for group in groups:
            members = [name for _pk, name in _members(group, self._usernames)]
            parent = by_uuid.get(str(group.get("parent"))) if group.get("parent") else None
            children = [by_uuid[str(c)]["name"] for c in group.get("children") or [] if str(c) in by_uuid]
            entries.append(group_entry(group, layout, members, children,
                                       parent["name"] if parent else group.get("parent_name"), pool))
        entries += self._virtual
        self._pool, self._users, self._virtual, self._usernames = {}, [], [], {}
        return entries


def restricted(full: Indexed, layout: Layout, username: str) -> list[Entry]:
    """What ``build(..., only_user_pk=...)`` gives, taken from the whole directory already built and indexed
    (cached mode keeps no JSON to rebuild from): the entries at the base and the containers, the user, the
    groups listing it as a member (member reduced to it), its virtual group. A group whose own attributes
    set ``member`` is matched on those values here."""
    user_dn = layout.user_dn(username)
    member = ("eq", "member", user_dn.casefold())
    groups = [Entry(e.dn, [(n, (user_dn,) if n.lower() == "member" else v) for n, v in e.attributes])
              for e in full.search(dnmod.key(layout.groups_dn), SCOPE_ONE, member)]
    return [*(e for dn in (layout.base, layout.users_dn, layout.groups_dn, layout.virtual_groups_dn)
              for e in full.by_dn(dnmod.key(dn))),
            *full.by_dn(dnmod.key(user_dn)), *groups, *full.by_dn(dnmod.key(layout.virtual_group_dn(username)))]


def _members(group: dict, usernames: dict) -> list[tuple]:
    """(pk, username) of the group's members: from ``users_obj`` when the core sent it (the users list may be
    narrowed by a pushed-down filter), else the ``users`` pks resolved against the users at hand."""
    if group.get("users_obj") is not None:
        return [(u.get("pk"), str(u.get("username"))) for u in group["users_obj"] if u.get("username")]
    return [(pk, usernames[pk]) for pk in group.get("users") or [] if pk in usernames]
