"""RADIUS reply attributes for an Access-Accept, from the user's or a group's attributes (VLAN by group).

Besides RADIUS property mappings (authentik's ``RadiusProviderPropertyMapping`` expressions,
core/providers/radius/mappings.py, which win for an attribute both set), an operator can set the attribute
``radius_reply_attributes`` on a group (or on a user, which wins over the groups), no code needed:

    {"radius_reply_attributes": [["Tunnel-Type:1", "VLAN"], ["Tunnel-Medium-Type:1", "IEEE-802"],
                                 ["Tunnel-Private-Group-Id:1", "42"]]}

(a mapping ``{"Tunnel-Type:1": "VLAN", ...}`` works too). The user's own value wins; else the first of the
user's groups, by name, that has one: a VLAN comes from one place, never a mix of two groups. Names are the
RADIUS dictionary's (protocols/radius/dictionary, ``:N`` for an RFC 2868 tag); a name it does not know or a
value that is not a string or an integer is left out and named in a log line, the rest is sent.
"""

from __future__ import annotations

import logging
from typing import Any

LOGGER = logging.getLogger("gatehouse.providers.radius")
ATTRIBUTE = "radius_reply_attributes"
MAX_ATTRIBUTES = 64


def _pairs(raw: Any) -> list[tuple[Any, Any]]:
    if isinstance(raw, dict):
        return list(raw.items())
    if isinstance(raw, list):
        return [tuple(item) if isinstance(item, (list, tuple)) and len(item) == 2 else (item, None)
                for item in raw]
    return [(raw, None)]


def attribute_problem(name: Any, value: Any, known) -> str | None:
    """None when (name, value) can be sent, else what is wrong with it."""
    if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"{str(name)[:60]!r}: expected [attribute name, string or integer]"
    base, _, tag = name.partition(":")
    if not known(base):
        return f"{name!r} is not in the RADIUS dictionary"
    if tag and not (tag.isdigit() and 0 <= int(tag) <= 31):
        return f"{name!r}: a tag is 0 to 31"
    return None


def reply_attributes(user) -> list[dict]:
    """``[{"name": .., "value": ..}]`` for the AuthAnswer of ``user``'s accepted Access-Request."""
    from protocols.radius.codec import dictionary

    source, raw = None, (user.attributes or {}).get(ATTRIBUTE)
    if raw is not None:
        source = f"user {user.username!r}"
    else:
        for group in user.groups.order_by("name"):
            if (group.attributes or {}).get(ATTRIBUTE) is not None:
                source, raw = f"group {group.name!r}", group.attributes[ATTRIBUTE]
                break
    if source is None:
        return []
    attributes = dictionary().attributes
    out = []
    for name, value in _pairs(raw)[:MAX_ATTRIBUTES]:
        problem = attribute_problem(name, value, lambda base: base in attributes)
        if problem:
            LOGGER.warning("radius reply attribute left out", extra={"source": source, "problem": problem})
            continue
        out.append({"name": name, "value": value})
    return out
