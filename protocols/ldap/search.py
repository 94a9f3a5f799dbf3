"""Search semantics over in-memory entries: scope, filter, requested attributes, typesOnly, sizeLimit and
the paged-results control (RFC 2696) with real cookies.

Requested attributes: none or ``*`` -> every user attribute; ``+`` -> the operational ones too (entryDN,
subschemaSubentry, hasSubordinates, createTimestamp, modifyTimestamp, pwdChangedTime, as OpenLDAP treats
them); ``1.1`` alone -> no attributes; names are matched case-insensitively, and a comma-joined name
(``"cn,mail"``) is split as authentik does. sizeLimit N: at most N entries, then sizeLimitExceeded (4).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from protocols.ldap import codec
from protocols.ldap import dn as dnmod
from protocols.ldap.filters import Filter, evaluate

OPERATIONAL = frozenset({"entrydn", "subschemasubentry", "hassubordinates", "createtimestamp",
                         "modifytimestamp", "pwdchangedtime", "structuralobjectclass"})
SCOPE_BASE, SCOPE_ONE, SCOPE_SUBTREE = 0, 1, 2
MAX_PAGED_SEARCHES = 8  # open paged searches per connection; the oldest is forgotten beyond this
MAX_PAGE_SIZE = 10_000


class Entry:
    """One directory entry: its DN and ordered (name, values) pairs. Lookups are case-insensitive.

    Compact, and ready to send: the values are held only as their BER, the PartialAttributes of a
    searchResEntry (``codec.partial_attribute``) concatenated in one bytes object (``ber``), with the end
    offset of each (``ends``, 4 bytes each). An answer splices the requested ones into the envelope
    (``codec.search_entry_encoded``) instead of encoding every value of every entry sent; the values are
    decoded back only where a filter or a caller reads them. With a ``pool`` (a dict shared by the entries of
    one build) the DN parts and the name tuples are stored once (every user of the same shape shares one).
    No case-folded copy is kept: ``folded`` folds on each call; searches that must look at many entries go
    through protocols/ldap/index.py, whose equality indexes hold the folded values once per directory."""

    __slots__ = ("dn", "dn_key", "keys", "names", "ber", "ends", "operational_all")

    def __init__(self, dn: str, attributes: Iterable[tuple[str, Iterable[str]]], *, operational_all: bool = False,
                 pool: dict | None = None):
        share = pool.setdefault if pool is not None else _same
        self.dn = share(dn, dn)
        self.dn_key = tuple(share(rdn, rdn) for rdn in dnmod.key(dnmod.parse(dn)))  # not through key()'s memo
        keys, parts, ends, at = [], [], [], 0
        for name, items in attributes:
            part = codec.partial_attribute(name, items)
            keys.append(name)
            parts.append(part)
            at += len(part)
            ends.append(at)
        # the names as given and lowercased: two tuples shared by every entry of the same shape (all users
        # without attributes of their own)
        keys, names = tuple(keys), tuple(name.lower() for name in keys)
        self.keys, self.names = share(keys, keys), share(names, names)
        self.ber = b"".join(parts)
        self.ends = b"".join([end.to_bytes(4, "little") for end in ends])
        self.operational_all = operational_all  # the Root DSE: "*" returns its operational attributes too

    def span(self, i: int) -> tuple[int, int]:
        """Where attribute ``i``'s PartialAttribute lies in ``ber``."""
        return _start(self.ends, i), _end(self.ends, i)

    def encoded(self, i: int) -> bytes:
        start, stop = self.span(i)
        return self.ber[start:stop]

    def values_at(self, i: int) -> tuple[str, ...]:
        ends = self.ends
        return codec.partial_attribute_values(self.ber, _start(ends, i), _end(ends, i))

    @property
    def values(self) -> tuple[tuple[str, ...], ...]:
        """The values of each attribute, parallel to ``keys`` (decoded on each call)."""
        return tuple(self.values_at(i) for i in range(len(self.keys)))

    @property
    def attributes(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(name, values) pairs, in order."""
        return tuple(zip(self.keys, self.values, strict=True))

    def _values(self, attr: str) -> tuple[str, ...]:
        names = self.names
        if attr not in names:  # the tuple's own search, in C: a scan asks this of every entry in scope
            return ()
        i = names.index(attr)
        if names.count(attr) > 1:  # the last of a repeated name wins
            i = len(names) - 1 - names[::-1].index(attr)
        return self.values_at(i)

    def folded(self, attr: str) -> tuple[str, ...]:
        """Case-folded values of ``attr`` (given lowercased)."""
        return _folded(self._values(attr))

    def get(self, attr: str) -> tuple[str, ...]:
        return self._values(attr.lower())

    def as_dict(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in zip(self.keys, self.values, strict=True)}

    def __repr__(self) -> str:
        return f"Entry({self.dn!r})"


def _same(_key, value):
    return value


def _start(ends: bytes, i: int) -> int:
    """Where attribute ``i`` starts in an entry's ``ber``, from its ``ends`` (4 bytes little-endian each)."""
    return int.from_bytes(ends[4 * i - 4:4 * i], "little") if i else 0


def _end(ends: bytes, i: int) -> int:
    return int.from_bytes(ends[4 * i:4 * i + 4], "little")


def _folded(values: tuple[str, ...]) -> tuple[str, ...]:
    """Case-folded values, the same tuple when they are already folded (most are)."""
    for v in values:
        if v.casefold() != v:
            return tuple(v.casefold() for v in values)
    return values


def requested_names(attributes: Iterable[str]) -> list[str]:
    return [part.strip() for item in attributes for part in item.split(",") if part.strip()]


def select(entry: Entry, attributes: Iterable[str], types_only: bool = False) -> list[tuple[str, list[str]]]:
    """The (name, values) pairs of ``entry`` a search asked for (values [] with typesOnly)."""
    return [(name, list(values)) for name, values in selector(attributes, types_only)(entry)]


def selector(attributes: Iterable[str], types_only: bool = False):
    """``select`` for one search's many entries: entry -> [(name, values tuple)]."""
    plan = planner(attributes)

    def pick(entry: Entry) -> list[tuple[str, tuple[str, ...]]]:
        keys = entry.keys
        return [(keys[i], () if types_only else entry.values_at(i)) for i in plan(entry)]

    return pick


def encoder(attributes: Iterable[str], types_only: bool = False):
    """What a search sends of each entry: entry -> the requested PartialAttributes, encoded (the entry's own
    bytes spliced: nothing is encoded per answer but with typesOnly). The wanted positions are taken as runs
    of neighbours, one slice each (the whole ``ber`` when every attribute is wanted)."""
    plan = planner(attributes)
    if types_only:
        return lambda entry: b"".join([codec.partial_attribute(entry.keys[i], ()) for i in plan(entry)])
    runs: dict[tuple, tuple[tuple[int, int], ...] | None] = {}  # shape -> (first, last) runs; None: all

    def encode(entry: Entry) -> bytes:
        shape = (entry.names, entry.operational_all)
        spans = runs.get(shape, _UNPLANNED)
        if spans is _UNPLANNED:
            spans = runs[shape] = _runs(plan(entry), len(entry.names))
        if spans is None:
            return entry.ber
        if not spans:
            return b""
        ber, ends = entry.ber, entry.ends
        parts = [ber[_start(ends, first):_end(ends, last)] for first, last in spans]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    return encode


_UNPLANNED = object()


def _runs(indices: tuple[int, ...], count: int) -> tuple[tuple[int, int], ...] | None:
    """Ascending positions as (first, last) runs of neighbours; None when they are all ``count`` of them."""
    if len(indices) == count and count:
        return None
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return tuple((first, last) for first, last in out)


def planner(attributes: Iterable[str]):
    """The requested names parsed once, and which attribute positions are wanted worked out once per shape
    of entry (the entries of one build share their name tuples): entry -> positions."""
    names = requested_names(attributes)
    lowered = {n.lower() for n in names}
    if lowered == {"1.1"}:
        return lambda entry: ()
    all_user = not names or "*" in lowered
    all_operational = "+" in lowered
    plans: dict[tuple, tuple[int, ...]] = {}

    def plan(entry: Entry) -> tuple[int, ...]:
        wanted = []
        for i, low in enumerate(entry.names):
            if low in lowered:
                wanted.append(i)
            elif entry.operational_all:  # the Root DSE and cn=subschema: "*" or "+" return everything
                if all_user or all_operational:
                    wanted.append(i)
            elif all_operational if low in OPERATIONAL else all_user:
                wanted.append(i)
        return tuple(wanted)

    def positions(entry: Entry) -> tuple[int, ...]:
        shape = (entry.names, entry.operational_all)
        indices = plans.get(shape)
        if indices is None:
            indices = plans[shape] = plan(entry)
        return indices

    return positions


def in_scope(entry: Entry, base_key: tuple, scope: int) -> bool:
    if scope == SCOPE_BASE:
        return entry.dn_key == base_key
    if not dnmod.is_within(entry.dn_key, base_key):
        return False
    return scope != SCOPE_ONE or len(entry.dn_key) == len(base_key) + 1


def matching(entries: Iterable[Entry], base_key: tuple, scope: int, flt: Filter) -> list[Entry]:
    """The entries in scope that match, in their order; an ``index.Indexed`` answers through its indexes."""
    indexed = getattr(entries, "search", None)
    if indexed is not None:
        return indexed(base_key, scope, flt)
    return [e for e in entries if in_scope(e, base_key, scope) and evaluate(flt, e)]


@dataclass
class _Paged:
    signature: tuple
    entries: list[Entry]
    offset: int
    over_limit: bool


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    code: int  # 0 or 4 (sizeLimitExceeded)
    cookie: bytes | None  # None: no paged-results control in the answer
    message: str = ""


class UnknownCookie(ValueError):
    pass


class Pager:
    """The paged searches of one connection: cookie -> the remaining result set (entry references only)."""

    def __init__(self, limit: int = MAX_PAGED_SEARCHES):
        self.limit = limit
        self._open: OrderedDict[bytes, _Paged] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def run(self, signature: tuple, size_limit: int, paged: tuple[int, bytes] | None, compute) -> Page:
        """``compute()`` returns every matching entry (called only for a new search, not a follow-up page).
        ``paged`` is the request's (page size, cookie) or None."""
        if paged is None:
            entries = compute()
            if size_limit and len(entries) > size_limit:
                return Page(entries[:size_limit], 4, None, f"more than {size_limit} entries match")
            return Page(entries, 0, None)
        size, cookie = paged
        if cookie:
            state = self._open.pop(cookie, None)
            if state is None or state.signature != signature:
                raise UnknownCookie("the paged results cookie is unknown, expired or belongs to another search")
            if size == 0:  # RFC 2696 §3: size 0 with a cookie abandons the paged search
                return Page([], 0, b"")
        else:
            entries = compute()
            over = bool(size_limit) and len(entries) > size_limit
            state = _Paged(signature, entries[:size_limit] if over else entries, 0, over)
        if size <= 0:
            size = len(state.entries)
        size = min(size, MAX_PAGE_SIZE)
        page = state.entries[state.offset:state.offset + size]
        state.offset += len(page)
        if state.offset < len(state.entries):
            new_cookie = secrets.token_bytes(16)
            self._open[new_cookie] = state
            while len(self._open) > self.limit:
                self._open.popitem(last=False)
            return Page(page, 0, new_cookie)
        if state.over_limit:
            return Page(page, 4, b"", f"more than {size_limit} entries match")
        return Page(page, 0, b"")
