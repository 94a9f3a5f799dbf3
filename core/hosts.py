"""Where the core is reached: its base URL and the host names it answers (issue 8 item 3).

Pure functions over plain values (standard library only), shared by the configuration reader, the
Base URL system setting, the Host check and the start-up log.

* The **base URL** (authentik 2026.8's "Base URL" system setting, seeded by ``AUTHENTIK_WEB__BASE_URL``)
  is scheme and host only. Every absolute link that leaves a request (a mail, for one) is built from it,
  never from the request's ``Host`` header: a reset link built from ``Host: attacker.example`` would hand
  the token to the attacker (password-reset poisoning).
* The **known hosts** are the host names the core's pages and API answer: the base URL's, the listen
  addresses, the loopback names, and ``AUTHENTIK_WEB__ALLOWED_HOSTS``. Patterns follow Django's
  ``ALLOWED_HOSTS`` (a leading dot matches subdomains, ``*`` matches any, ports are ignored).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

BASE_URL_VARIABLE = "AUTHENTIK_WEB__BASE_URL"
ALLOWED_HOSTS_VARIABLE = "AUTHENTIK_WEB__ALLOWED_HOSTS"
BASE_URL_SETTING = "System -> Settings -> Base URL (/if/admin/)"
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_LISTEN = ("0.0.0.0", "::", "")  # noqa: S104 - listen addresses, compared, never bound here
# A name (".example.com" also matches subdomains), an IPv4 address, an IPv6 address in brackets, or "*";
# never a port.
_HOST = re.compile(r"^(\*|\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*|\[[0-9a-f:.]+\])$")


def normalize_base_url(value: str) -> str:
    """``value`` as ``scheme://host[:port]`` (lower case, no trailing slash), "" for empty.

    Raises ValueError naming what is expected: http or https, a host, no user, path, query or fragment.
    """
    raw = (value or "").strip()
    if not raw:
        return ""
    expected = "expected the URL people reach Gatehouse at, scheme and host only, e.g. https://auth.example.com"
    text = raw.rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc \
            or parts.path or parts.query or parts.fragment or any(c.isspace() or ord(c) < 0x20 for c in text):
        raise ValueError(expected)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def base_url_host(base_url: str) -> str:
    """The host pattern of a normalized base URL ("" for none): ``auth.example.com``, ``[2001:db8::1]``."""
    if not base_url:
        return ""
    host = urlsplit(base_url).hostname or ""
    return f"[{host}]" if ":" in host else host


def parse_host(item: str) -> str:
    """One allow-list entry, lower-cased (a bare IPv6 address gets its brackets). Raises ValueError."""
    name = item.strip().lower()
    if name.count(":") > 1 and not name.startswith("["):
        name = f"[{name}]"
    if not _HOST.match(name):
        raise ValueError(f"{item.strip()!r} is not a host name; expected names without port, e.g. "
                         "auth.example.com, .internal.example (and its subdomains), 10.0.0.5, or *")
    return name


def listen_host(host: str) -> str | None:
    """The host pattern of a listen address, None for a wildcard (any interface: no name to add)."""
    if host in WILDCARD_LISTEN:
        return None
    return f"[{host}]" if ":" in host else host.lower()


def static_hosts(base_url: str, listen: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The known host patterns that do not depend on the database, in a stable order without repeats."""
    names = [base_url_host(base_url), *(listen_host(h) for h in listen), *LOOPBACK, *allowed]
    return tuple(dict.fromkeys(n for n in names if n))


def refusal(host: str) -> str:
    """The answer to a request for a host the core does not know (for people: names the fix)."""
    shown = host if host.isprintable() and len(host) <= 255 else repr(host[:255])
    return (f"Gatehouse does not answer for the host name {shown!r}.\n"
            f"If people or services reach Gatehouse under this name, set {BASE_URL_VARIABLE} (or "
            f"{BASE_URL_SETTING}) to the URL they use, or add the name to {ALLOWED_HOSTS_VARIABLE} "
            "(comma-separated).\n")


def answered_hosts(static: tuple[str, ...], stored: str) -> tuple[str, ...]:
    """Every host pattern answered: the static ones and the Base URL system setting's host."""
    return tuple(dict.fromkeys(n for n in (*static, base_url_host(stored)) if n))


def startup_notes(static: tuple[str, ...], stored: str, from_env: str) -> list[tuple[str, str]]:
    """(level, message) lines for the start-up log: which names are answered and what is missing.

    ``stored`` is the Base URL system setting, ``from_env`` AUTHENTIK_WEB__BASE_URL (both normalized)."""
    in_use = stored or from_env
    hosts = answered_hosts(static, stored)
    notes = [("info", f"answering the host names {', '.join(hosts)}; others get 400 (add names to "
                      f"{ALLOWED_HOSTS_VARIABLE})")]
    if "*" in static:
        notes.append(("warning", f"{ALLOWED_HOSTS_VARIABLE} contains *: any Host header is answered; links in "
                                 "mail still use only the base URL"))
    if not in_use:
        notes.append(("warning", f"no base URL is configured: mail with links (password recovery) is not sent; "
                                 f"set {BASE_URL_VARIABLE}=https://<the host people use> or {BASE_URL_SETTING}"))
    elif stored and from_env and stored != from_env:
        notes.append(("warning", f"{BASE_URL_VARIABLE}={from_env} differs from the Base URL system setting "
                                 f"({stored}), which is used; change the setting in /if/admin/ to change it"))
    else:
        notes.append(("info", f"base URL {in_use} (links in mail use it)"))
    return notes
