"""User names: one canonical form for lookups and counters, one finder, and the rules for new names.

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
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Q

MAX_LENGTH = 150  # User.username's column (authentik's too); PostgreSQL refuses longer with a 500
SKELETON_DIGITS = "tr39"  # UTS #39 identifier skeletons: "1" and "l", "0" and "O" look alike as well


def canonical(name: str | None) -> str:
    """NFKC + casefold of the name as typed, surrounding whitespace removed."""
    return unicodedata.normalize("NFKC", (name or "").strip()).casefold()


def find_user(identifier: str, fields: list | None, case_insensitive: bool = True):
    """The user whose username (or email, or UPN) is ``identifier``, or None.

    Case-insensitive matching compares canonical forms. Several users with one canonical username can
    only come from data written before names were validated (``validate_new`` below); then the
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


# --- rules for new names -----------------------------------------------------------------------------
#
# A new user name (enrollment's prompt and user_write stages, the REST API's user create/update and
# service accounts, the CSV import) must be one a person can read and tell apart from the others:
#
# * 1 to MAX_LENGTH characters, no control, format (zero-width, bidi), separator or unassigned
#   characters other than single inner spaces, and already in NFKC (no fullwidth or other compatibility
#   forms: "ａｌｉｃｅ" is refused with "write it as 'alice'");
# * not the canonical form of another user's name, nor another user's email address (a login by email
#   would be ambiguous);
# * not a look-alike of another user's name: the same UTS #39 skeleton ("аlice" with a Cyrillic а, "alıce"
#   with a dotless ı, "AIice" with a capital I). Skeletons come from disarm's ``skeleton_key`` (Unicode's
#   confusables data, kept current there) of the name as written and of its canonical form.
#
# Names already stored are never re-judged: an update that keeps the name passes.


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'CONTROL CHARACTER')}"


def _skeletons(name: str) -> frozenset[str]:
    from disarm import skeleton_key  # imported on first use: 0.3 s that start-up does not need

    written = unicodedata.normalize("NFKC", name)
    return frozenset(skeleton_key(form, digit_policy=SKELETON_DIGITS) for form in (written, canonical(written)))


def character_problem(name: str) -> str | None:
    """What makes ``name`` unusable on its own (None when nothing does): a message for people."""
    if not name:
        return "The user name is empty."
    if len(name) > MAX_LENGTH:
        return f"The user name is {len(name)} characters long; at most {MAX_LENGTH} characters are allowed."
    for char in name:
        if char != " " and unicodedata.category(char)[0] in "CZ":
            return (f"The user name contains {_describe(char)}, an invisible, control or spacing character; "
                    "use letters, digits, punctuation and single spaces only.")
    if name != name.strip() or "  " in name:
        return "The user name starts or ends with a space, or has two in a row; remove the extra spaces."
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        odd = next((c for c in name if unicodedata.normalize("NFKC", c) != c), None)
        what = f"{_describe(odd)}, a compatibility form" if odd else "letters and marks written apart"
        return f"The user name contains {what}; write it as {normal!r}."
    return None


@dataclass
class ExistingNames:
    """The names a new one must not collide with: canonical forms, emails and skeletons of every user
    (but the one being edited). Loaded once; ``add`` keeps a bulk import's earlier rows in it."""

    canonicals: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    skeletons: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, exclude_pk=None) -> ExistingNames:
        from core.accounts.models import User

        names = cls()
        for username, email in User.objects.exclude(pk=exclude_pk).values_list("username", "email").iterator():
            names.add(username, email)
        return names

    def add(self, username: str, email: str = "") -> None:
        self.canonicals.add(canonical(username))
        if email:
            self.emails.add(canonical(email))
        self.skeletons.update(_skeletons(username))

    def conflict(self, name: str) -> str | None:
        wanted = canonical(name)
        if wanted in self.canonicals:
            return (f"The user name {name!r} is taken (names are compared ignoring case and width); "
                    "choose another.")
        if wanted in self.emails:
            return (f"The user name {name!r} is another user's email address; logins by email would be "
                    "ambiguous. Choose another.")
        if _skeletons(name) & self.skeletons:
            unusual = [c for c in name if not c.isascii()][:3]
            detail = f" (it contains {', '.join(_describe(c) for c in unusual)})" if unusual else ""
            return (f"The user name {name!r} looks too much like an existing user name{detail}; "
                    "choose one that is easy to tell apart.")
        return None


def validate_new(name, *, current: str | None = None, existing: ExistingNames | None = None,
                 exclude_pk=None) -> str:
    """``name`` if it may be a new user name, else a django ValidationError with the reason.

    ``current``: the user's present name (an update keeping it passes). ``existing``: a loaded index
    (bulk callers load it once); else the users but ``exclude_pk`` are read now.
    """
    if not isinstance(name, str):
        raise ValidationError("The user name must be text.", code="invalid")
    if current is not None and name == current:
        return name
    found = problem(name, existing, exclude_pk)
    if found is not None:
        raise ValidationError(found, code="invalid")
    return name


def problem(name: str, existing: ExistingNames | None = None, exclude_pk=None) -> str | None:
    """Why ``name`` cannot be a new user name (None: it can); ``validate_new`` without the exception."""
    found = character_problem(name)
    if found is None:
        found = (existing if existing is not None else ExistingNames.load(exclude_pk)).conflict(name)
    return found
