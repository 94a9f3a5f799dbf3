"""User names: one canonical form for lookups and counters, and one finder.

Canonical form (THREATS 13): Unicode NFKC, then full case folding (Unicode §3.13 ``toCasefold``, Python's
``str.casefold``). "Alice", "ALICE" and "ａｌｉｃｅ" (fullwidth) are one name; "admın" (U+0131 LATIN SMALL
LETTER DOTLESS I) is NOT "admin": casefold keeps the dotless i. The form is computed in Python and kept
in ``User.username_canonical``, so a lookup compares the same strings on SQLite and PostgreSQL. The
database's own case-insensitive comparison differs between the two -- PostgreSQL's ``UPPER()`` turns
"ı" into "I" and matched "admın" to "admin", SQLite's ``LIKE`` folds ASCII only -- so it is never what
decides who a typed name is: an email lookup that goes through it is checked again in Python.
"""

from __future__ import annotations

import unicodedata

from django.db.models import Q


def canonical(name: str | None) -> str:
    """NFKC + casefold of the name as typed, surrounding whitespace removed."""
    return unicodedata.normalize("NFKC", (name or "").strip()).casefold()


def find_user(identifier: str, fields: list | None, case_insensitive: bool = True):
    """The user whose username (or email, or UPN) is ``identifier``, or None.

    Case-insensitive matching compares canonical forms. Several users with one canonical username can
    only come from data written before names were validated (core/accounts/validation.py); then the
    exact spelling wins, else the oldest account, as before.
    """
    from core.accounts.models import User

    wanted = canonical(identifier)
    query = Q()
    for name in fields or ["username", "email"]:
        if name == "username":
            query |= Q(username_canonical=wanted) if case_insensitive else Q(username=identifier)
        elif name == "email" and "@" in identifier:
            query |= Q(email__iexact=identifier) if case_insensitive else Q(email=identifier)
        elif name == "upn":
            query |= Q(attributes__upn=identifier)
    if not query:
        return None
    candidates = list(User.objects.filter(query).order_by("pk")[:20])
    if case_insensitive:  # the database's iexact folds differently per engine; the canonical form decides
        candidates = [u for u in candidates if u.username_canonical == wanted or canonical(u.email) == wanted
                      or ("upn" in (fields or ()) and (u.attributes or {}).get("upn") == identifier)]
    exact = [u for u in candidates if identifier in (u.username, u.email)]
    return (exact or candidates or [None])[0]
