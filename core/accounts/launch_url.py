"""Application launch URLs (issue 8 item 11): only absolute http(s) URLs, refused when saved (API, admin,
blueprints through ``Application.clean``) and filtered again when the portal renders them.

Browsers drop leading C0 control characters and spaces and every tab and newline before reading a URL's
scheme, and compare schemes case-insensitively, so ``\\x01JavaScript:`` and ``java\\tscript:`` are scripts;
a URL with any control character or space is refused outright rather than cleaned.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https")
EXPECTED = "expected an http:// or https:// URL, e.g. https://app.example.com"


def launch_url_problem(value: str | None) -> str | None:
    """Why ``value`` cannot be a launch URL, or None when it can ("" can: the provider's URL is used)."""
    if not value:
        return None
    if any(ord(c) <= 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return f"{value!r} contains spaces or control characters; {EXPECTED}"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return f"{value!r} is not a URL; {EXPECTED}"
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        return f"{value!r}: the scheme {scheme!r} is not allowed; {EXPECTED}" if scheme else f"{value!r}: {EXPECTED}"
    if not host:
        return f"{value!r} has no host; {EXPECTED}"
    return None


def launchable(value: str | None) -> bool:
    """True for a URL the portal may render as a link."""
    return bool(value) and launch_url_problem(value) is None
