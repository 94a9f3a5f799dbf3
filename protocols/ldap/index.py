"""A built directory with indexes, so a cached search looks at the few entries that can match instead of all.

``Indexed(entries)`` keeps the entries in their order and builds, once per directory:

- equality indexes, for the attributes clients filter on (``INDEXED``): the case-folded value -> the
  positions of the entries holding it, ascending (a ``_Table`` of arrays per attribute);
- the entries by DN key and the child DN keys of every DN key (every ancestor of an entry linked, whether
  it is an entry or not), for the scope.

``search(base_key, scope, flt)`` returns exactly what ``search.matching`` returns over the same entries, in
the same order: when the filter holds an indexed equality (alone, inside an AND, or an OR whose every branch
is indexed) only those candidates are checked (scope by DN key suffix, then the whole filter); otherwise
the entries in scope (found through the DN-key links: base -> one entry, one level -> its children,
subtree -> its descendants) are each checked against the filter. Equality in the index is the filter's
(``evaluate``: the asserted value casefolded, ``in`` the entry's casefolded values, the last attribute of a
repeated name); tests/protocols/ldap/test_index.py compares both on a generated directory.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from protocols.ldap.filters import Filter, evaluate
from protocols.ldap.search import SCOPE_BASE, SCOPE_ONE, Entry, in_scope

INDEXED = frozenset({"cn", "uid", "mail", "samaccountname", "memberof", "member", "objectclass", "uidnumber",
                     "gidnumber", "name", "displayname", "ak-active", "entrydn", "distinguishedname"})


class Indexed:
    """Entries (a sequence: iterate, len) with equality and DN indexes; read-only once built."""

    __slots__ = ("entries", "_eq", "_by_key", "_subkeys", "_root")

    def __init__(self, entries: Iterable[Entry]):
        self.entries: list[Entry] = list(entries)
        self._eq: dict[str, _Table] = {}
        self._by_key: dict[tuple, int | list[int]] = {}
        self._subkeys: dict[tuple, set[tuple] | tuple] = {}
        eq: dict[str, dict[str, int | list[int]]] = {name: {} for name in INDEXED}  # compacted below
        folded_of: dict[str, str] = {}  # one folded string per distinct value, for the whole directory
        for pos, entry in enumerate(self.entries):
            _add(self._by_key, entry.dn_key, pos)
            key = entry.dn_key
            while key:  # link every ancestor to its child key, stopping where the chain is known
                parent = key[1:]
                children = self._subkeys.setdefault(parent, set())
                if key in children:
                    break
                children.add(key)
                key = parent
            seen: set[str] = set()
            for i in range(len(entry.names) - 1, -1, -1):  # the last of a repeated name wins, as Entry.folded
                name = entry.names[i]
                if name not in INDEXED or name in seen:
                    continue
                seen.add(name)
                table = eq[name]
                for value in entry.values_at(i):
                    folded = folded_of.get(value)
                    if folded is None:
                        folded = value.casefold()
                        folded = folded_of[value] = value if folded == value else folded
                    _add(table, folded, pos, unique=True)
        self._root = _common_suffix([e.dn_key for e in self.entries])
        self._eq = {name: _Table(table) for name, table in eq.items()}
        self._subkeys = {key: tuple(children) for key, children in self._subkeys.items()}  # read-only from here

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def by_dn(self, dn_key: tuple) -> list[Entry]:
        return [self.entries[p] for p in _positions(self._by_key.get(dn_key))]

    # -- search -------------------------------------------------------------------------------------
    def candidates(self, flt: Filter) -> Sequence[int] | None:
        """Sorted positions of the only entries that can match ``flt``, or None when no index narrows it."""
        op = flt[0]
        if op == "eq":
            table = self._eq.get(flt[1])
            return None if table is None else table.get(flt[2])
        if op == "and":
            best = None
            for child in flt[1]:
                found = self.candidates(child)
                if found is not None and (best is None or len(found) < len(best)):
                    best = found
                    if not best:
                        break
            return best
        if op == "or" and flt[1]:
            union: set[int] = set()
            for child in flt[1]:
                found = self.candidates(child)
                if found is None:
                    return None
                union.update(found)
            return sorted(union)
        return None

    def in_scope(self, base_key: tuple, scope: int) -> list[Entry]:
        if scope == SCOPE_BASE:
            return self.by_dn(base_key)
        if scope == SCOPE_ONE:
            keys = self._subkeys.get(base_key, ())
            return [self.entries[p] for p in sorted(p for k in keys for p in _positions(self._by_key.get(k)))]
        root = self._root
        if root is not None and len(base_key) <= len(root) and root[len(root) - len(base_key):] == base_key:
            return self.entries  # the base is the common suffix or above: everything is in scope
        found: list[int] = list(_positions(self._by_key.get(base_key)))
        stack = [base_key]
        while stack:
            for key in self._subkeys.get(stack.pop(), ()):
                found.extend(_positions(self._by_key.get(key)))
                stack.append(key)
        return [self.entries[p] for p in sorted(found)]

    def search(self, base_key: tuple, scope: int, flt: Filter) -> list[Entry]:
        positions = self.candidates(flt)
        if positions is None:
            return [e for e in self.in_scope(base_key, scope) if evaluate(flt, e)]
        entries = self.entries
        if flt[0] == "eq":  # the index holds exactly the entries this equality matches
            return [e for e in (entries[p] for p in positions) if in_scope(e, base_key, scope)]
        return [e for e in (entries[p] for p in positions) if in_scope(e, base_key, scope) and evaluate(flt, e)]


def _common_suffix(keys: list[tuple]) -> tuple | None:
    """The shortest DN key when every key lies under it (usually the base DN), else None: a subtree search
    from it or above needs no scope check."""
    if not keys:
        return None
    root = min(keys, key=len)
    return root if all(k[len(k) - len(root):] == root for k in keys) else None


def _add(table: dict, key, pos: int, unique: bool = False) -> None:
    held = table.get(key)
    if held is None:
        table[key] = pos
    elif isinstance(held, int):
        if not (unique and held == pos):
            table[key] = [held, pos]
    elif not (unique and held[-1] == pos):  # positions arrive in order: a repeat is the last one
        held.append(pos)


def _positions(held) -> list[int]:
    if held is None:
        return []
    return [held] if isinstance(held, int) else held


class _Table:
    """One equality index, compact: a dict of 10,000s of strings and position lists took ~10 MB for 10,000
    users, this ~3. The distinct case-folded values sorted by ``hash()``, in four arrays: their hashes (found
    by bisection), their UTF-8 bytes in one bytes object (``values``, ends in ``value_ends``; a hash found is
    confirmed on these bytes, so the answer is exact), and the positions of the entries holding each value,
    ascending (``positions``, ends in ``position_ends``)."""

    __slots__ = ("hashes", "values", "value_ends", "positions", "position_ends")

    def __init__(self, table: dict[str, int | list[int]]):
        items = sorted(table.items(), key=lambda item: hash(item[0]))
        self.hashes = array("q", [hash(value) for value, _ in items])
        raw = [_utf8(value) for value, _ in items]
        self.values = b"".join(raw)
        self.value_ends = array("I", _ends(len(r) for r in raw))
        held = [_positions(positions) for _, positions in items]
        self.positions = array("I", [p for positions in held for p in positions])
        self.position_ends = array("I", _ends(len(positions) for positions in held))

    def get(self, value: str) -> Sequence[int]:
        """The positions of the entries holding ``value`` (case-folded), ascending."""
        wanted, hashes = hash(value), self.hashes
        i = bisect_left(hashes, wanted)
        raw = None
        while i < len(hashes) and hashes[i] == wanted:
            raw = _utf8(value) if raw is None else raw
            if self.values[self.value_ends[i - 1] if i else 0:self.value_ends[i]] == raw:
                return self.positions[self.position_ends[i - 1] if i else 0:self.position_ends[i]]
            i += 1
        return ()


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _ends(lengths: Iterable[int]) -> list[int]:
    out, at = [], 0
    for length in lengths:
        at += length
        out.append(at)
    return out
