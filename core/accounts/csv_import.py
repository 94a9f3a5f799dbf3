"""Bulk user import from CSV, as the seeds describe (Directory -> Users -> Import: username, email, name).

Optional columns: ``password`` (set when given), ``groups`` (names separated by ``|``, created if missing),
``is_active``. All-or-nothing: a file with any bad row changes nothing, and every bad row is reported
with its line number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from core.accounts.models import Group, User
from core.accounts.usernames import ExistingNames
from core.accounts.usernames import problem as username_problem

REQUIRED = ("username",)
KNOWN = ("username", "email", "name", "password", "groups", "is_active")
MAX_ROWS = 50_000


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _rows(text: str, result: ImportResult) -> list[tuple[int, dict]]:
    """The rows with the line each starts on. Malformed CSV (RFC 4180 §2: a quote that does not close where
    its field ends) is one error naming the line where the broken record starts, never a field that swallows
    the rows after it; no column of a user holds a line break, so a record spanning lines is malformed too."""
    reader = csv.reader(io.StringIO(text), strict=True)
    line = 1
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if "username" not in header:
            result.errors.append(f"line 1: the header must name a 'username' column (got {', '.join(header) or 'none'});"
                                 " expected e.g. username,email,name")
            return []
        unknown = [h for h in header if h and h not in KNOWN]
        if unknown:
            result.errors.append(f"line 1: unknown column(s) {', '.join(unknown)}; known: {', '.join(KNOWN)}")
        rows = []
        while True:
            line = reader.line_num + 1
            values = next(reader, None)
            if values is None:
                return rows
            if not values:  # a blank line
                continue
            if reader.line_num != line:
                result.errors.append(f"line {line}: a quoted field runs on to line {reader.line_num}; close the "
                                     f'quote on line {line} (a quote left open swallows the rows after it)')
                return []
            if len(rows) >= MAX_ROWS:
                result.errors.append(f"more than {MAX_ROWS} rows; split the file")
                return rows
            rows.append((line, {h: (values[i] if i < len(values) else "").strip()
                                for i, h in enumerate(header) if h}))
    except csv.Error as exc:
        result.errors.append(f"line {line}: malformed CSV ({exc}); a field that starts with a quote must end "
                             'with one, and a quote inside a quoted field is written twice ("")')
        return []


def import_users(text: str) -> ImportResult:
    result = ImportResult()
    rows = _rows(text, result)
    seen: set[str] = set()
    names, stored = ExistingNames.load(), set(User.objects.values_list("username", flat=True))
    for line, row in rows:
        username = row.get("username", "")
        if not username:
            result.errors.append(f"line {line}: username is empty")
        elif len(username) > 150:
            result.errors.append(f"line {line}: username {username[:20]!r}... is longer than 150 characters")
        elif username.lower() in seen:
            result.errors.append(f"line {line}: username {username!r} appears twice in the file")
        elif username not in stored and (refused := username_problem(username, names)):  # a new user's name
            result.errors.append(f"line {line}: {refused}")
        seen.add(username.lower())
        names.add(username, row.get("email", ""))
        if row.get("email"):
            try:
                validate_email(row["email"])
            except ValidationError:
                result.errors.append(f"line {line}: email {row['email']!r} is not an email address")
        if row.get("is_active", "") not in ("", "true", "false", "1", "0", "True", "False"):
            result.errors.append(f"line {line}: is_active {row['is_active']!r}: expected true or false")
    if result.errors:
        return result
    with transaction.atomic():
        for _line, row in rows:
            user = User.objects.filter(username=row["username"]).first()
            created = user is None
            user = user or User(username=row["username"])
            if "email" in row:
                user.email = row["email"]
            if "name" in row:
                user.name = row["name"]
            if row.get("is_active"):
                user.is_active = row["is_active"].lower() in ("true", "1")
            if row.get("password"):
                user.set_password(row["password"])
            elif created:
                user.set_unusable_password()
            user.save()
            if row.get("groups"):
                names = [n.strip() for n in row["groups"].split("|") if n.strip()]
                user.groups.add(*[Group.objects.get_or_create(name=n)[0] for n in names])
            (result.created if created else result.updated).append(user.username)
    return result
