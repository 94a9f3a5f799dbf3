"""RFC 4514 distinguished names: parse, escape, compare.

Hand-written, not ldap3.utils.dn.parse_dn: that keeps the escapes in the values (``A\\,b``), rejects the
space after a comma that people type (``cn=x, ou=users``) and rejects ``#``-hex values. Here a DN parses to
a tuple of RDNs, each a sorted tuple of (lowercased type, unescaped value); ``key()`` folds values too, so
two DNs are equal when their keys are (caseIgnoreMatch, as every attribute we serve).
"""

from __future__ import annotations

import functools
import sys

Rdn = tuple[tuple[str, str], ...]

_SPECIAL = set(',+"\\<>;=')
_HEX = set("0123456789abcdefABCDEF")


class DNError(ValueError):
    """Not a DN (answer invalidDNSyntax, 34)."""


def escape_value(value: str) -> str:
    """RFC 4514 §2.4: escape , + " \\ < > ; = and NUL, a leading # or space, a trailing space."""
    out = []
    for i, ch in enumerate(value):
        if ch in _SPECIAL or (ch == "#" and i == 0) or (ch == " " and (i == 0 or i == len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def _unescape(raw: str, dn: str) -> str:
    if raw.startswith("#"):  # BER-encoded value: accept the hex of an OCTET/UTF8 string's content
        body = raw[1:]
        if len(body) % 2 or not body or not set(body) <= _HEX:
            raise DNError(f"{dn!r}: {raw!r} is not a #hex value")
        data = bytes.fromhex(body)
        return data[2:].decode("utf-8", errors="replace") if len(data) >= 2 else ""
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1:i + 3]
            if len(nxt) == 2 and set(nxt) <= _HEX:
                out += bytes.fromhex(nxt)
                i += 3
                continue
            if i + 1 < len(raw):
                out += raw[i + 1].encode()
                i += 2
                continue
            raise DNError(f"{dn!r}: a trailing backslash")
        if ch in '"<>;':
            raise DNError(f"{dn!r}: {ch!r} must be escaped as \\{ch}")
        out += ch.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def parse(dn: str) -> tuple[Rdn, ...]:
    """``"cn=Bob\\, Jr,ou=users,dc=example"`` -> ((("cn", "Bob, Jr"),), (("ou", "users"),), (("dc", "example"),)).
    The empty DN is ()."""
    if not dn.strip():
        return ()
    rdns: list[Rdn] = []
    current: list[tuple[str, str]] = []
    i, n = 0, len(dn)
    while True:
        eq = dn.find("=", i)
        if eq < 0:
            raise DNError(f"{dn!r}: expected type=value after position {i}, e.g. cn=alice,ou=users,dc=example")
        attr = sys.intern(dn[i:eq].strip().lower())  # a few names (cn, ou, dc) in every DN of a directory
        if not attr or not all(c.isalnum() or c in "-." for c in attr):
            raise DNError(f"{dn!r}: {dn[i:eq].strip()!r} is not an attribute type")
        j = eq + 1
        while j < n:  # the value runs to the next unescaped , or +
            if dn[j] == "\\":
                j += 2
                continue
            if dn[j] in ",+":
                break
            j += 1
        raw = dn[eq + 1:min(j, n)].strip()
        if raw.endswith("\\") and dn[eq + 1:min(j, n)].endswith(" "):
            raw += " "  # an escaped trailing space
        current.append((attr, _unescape(raw, dn)))
        if j >= n:
            rdns.append(tuple(sorted(current)))
            return tuple(rdns)
        if dn[j] == ",":
            rdns.append(tuple(sorted(current)))
            current = []
        i = j + 1


def key(dn: str | tuple[Rdn, ...]) -> tuple[Rdn, ...]:
    """A comparable form: types lowercased, values case-folded, surrounding spaces removed."""
    if isinstance(dn, str):
        return _key_of(dn)
    return tuple(tuple((a, v.strip().casefold()) for a, v in rdn) for rdn in dn)


@functools.lru_cache(maxsize=4096)
def _key_of(dn: str) -> tuple[Rdn, ...]:
    """Memoized (a pure function of the string, bounded): a search parses its base and the provider's base DN
    a few times, each parse ~50 µs."""
    return key(parse(dn))


def format_dn(rdns: tuple[Rdn, ...]) -> str:
    return ",".join("+".join(f"{a}={escape_value(v)}" for a, v in rdn) for rdn in rdns)


def normalize(dn: str) -> str:
    """The canonical string of ``key(dn)`` (lowercase, escaped)."""
    return format_dn(key(dn))


def is_within(dn_key: tuple[Rdn, ...], base_key: tuple[Rdn, ...]) -> bool:
    """``dn`` equals ``base`` or lies below it (keys from ``key``)."""
    return len(dn_key) >= len(base_key) and (not base_key or dn_key[-len(base_key):] == base_key)


def first_value(rdns: tuple[Rdn, ...], attr: str) -> str | None:
    """The value of the first ``attr=`` in the DN (authentik takes the username from the first cn=)."""
    for rdn in rdns:
        for a, v in rdn:
            if a == attr:
                return v
    return None
