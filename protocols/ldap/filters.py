"""RFC 4515 search filters: the decoded pyasn1 Filter -> a small tuple tree, evaluated over an Entry.

Matching as the attributes we serve need it: attribute names case-insensitive, values compared with
caseIgnoreMatch (casefold), ``>=``/``<=`` numerically when both sides are integers (uidNumber, gidNumber)
and as case-folded strings otherwise (GeneralizedTime sorts as a string), approx (``~=``) as equality.
Extensible match (``:dn:``, ``:1.2.3:=``) is refused with unwillingToPerform (53) and a message saying so:
no client we target sends it, and answering it wrongly would leak or hide entries.

A filter is a tuple: ("and", (f, ...)), ("or", (f, ...)), ("not", f), ("eq", attr, value),
("ge", attr, value), ("le", attr, value), ("present", attr), ("sub", attr, initial, (any, ...), final).
Attribute names are kept lowercased; values casefolded.
"""

from __future__ import annotations

from typing import Any

MAX_FILTER_DEPTH = 32
UNWILLING_TO_PERFORM = 53
PROTOCOL_ERROR = 2

Filter = tuple[Any, ...]


class FilterError(ValueError):
    def __init__(self, message: str, code: int = UNWILLING_TO_PERFORM):
        super().__init__(message)
        self.code = code


def _text(value) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _attr(value) -> str:
    name = _text(value).strip().lower()
    return name.split(";", 1)[0]  # attribute options (";binary", ";lang-x") are not served: match the base type


def from_asn1(node, depth: int = 0) -> Filter:
    """pyasn1 ``Filter`` -> tuple tree. Depth is bounded (the BER nesting check bounds it too)."""
    if depth > MAX_FILTER_DEPTH:
        raise FilterError(f"filter nested deeper than {MAX_FILTER_DEPTH} levels", PROTOCOL_ERROR)
    kind = node.getName()
    body = node.getComponent()
    if kind in ("and", "or"):
        return (kind, tuple(from_asn1(child, depth + 1) for child in body))
    if kind == "not":
        return ("not", from_asn1(body["innerNotFilter"], depth + 1))
    if kind in ("equalityMatch", "approxMatch", "greaterOrEqual", "lessOrEqual"):
        op = {"equalityMatch": "eq", "approxMatch": "eq", "greaterOrEqual": "ge", "lessOrEqual": "le"}[kind]
        return (op, _attr(body["attributeDesc"]), _text(body["assertionValue"]).casefold())
    if kind == "present":
        return ("present", _attr(body))
    if kind == "substringFilter":
        initial, middle, final = None, [], None
        for part in body["substrings"]:
            which, value = part.getName(), _text(part.getComponent()).casefold()
            if which == "initial":
                initial = value
            elif which == "any":
                middle.append(value)
            else:
                final = value
        return ("sub", _attr(body["type"]), initial, tuple(middle), final)
    if kind == "extensibleMatch":
        raise FilterError("extensible match filters (attr:rule:=value, :dn:) are not supported by this "
                          "directory; use an equality or substring filter")
    raise FilterError(f"unknown filter choice {kind!r}", PROTOCOL_ERROR)


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _substring(value: str, initial: str | None, middle: tuple[str, ...], final: str | None) -> bool:
    pos, end = 0, len(value)
    if initial is not None:
        if not value.startswith(initial):
            return False
        pos = len(initial)
    if final is not None:
        if len(value) - pos < len(final) or not value.endswith(final):
            return False
        end = len(value) - len(final)
    for part in middle:
        found = value.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def evaluate(flt: Filter, entry) -> bool:
    """Does ``entry`` (anything with ``folded(attr) -> tuple of casefolded values``) match?"""
    op = flt[0]
    if op == "and":
        return all(evaluate(f, entry) for f in flt[1])
    if op == "or":
        return any(evaluate(f, entry) for f in flt[1])
    if op == "not":
        return not evaluate(flt[1], entry)
    if op == "present":
        return flt[1] == "objectclass" or bool(entry.folded(flt[1]))
    values = entry.folded(flt[1])
    if op == "eq":
        return flt[2] in values
    if op == "sub":
        return any(_substring(v, flt[2], flt[3], flt[4]) for v in values)
    wanted = flt[2]
    wanted_int = _as_int(wanted)
    for value in values:
        number = _as_int(value) if wanted_int is not None else None
        left, right = (number, wanted_int) if number is not None else (value, wanted)
        if (op == "ge" and left >= right) or (op == "le" and left <= right):
            return True
    return False


def object_classes(flt: Filter) -> set[str] | None:
    """The objectClass values an entry must have for the filter to possibly match through a top-level AND or
    single equality (lowercase), None when the filter does not constrain it (used to skip whole subtrees)."""
    if flt[0] == "eq" and flt[1] == "objectclass":
        return {flt[2]}
    if flt[0] == "and":
        for child in flt[1]:
            found = object_classes(child)
            if found is not None:
                return found
    return None
