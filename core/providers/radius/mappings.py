"""RADIUS property mappings (authentik's ``RadiusProviderPropertyMapping``): reply attributes for an Access-Accept.

Each mapping attached to the provider (``property_mappings``) is an expression run in name order, as the body of
a function, by the expression-policy evaluator (core/policies/expression.py: its refused names, its timeout, a
forked evaluator for anything not provably short). In scope, as in authentik: ``request`` (``request.user``),
``user``, ``provider``, ``packet`` and ``define_attribute(vendor_code, vendor_name, attribute_name,
attribute_code, attribute_type)``, which makes ``packet["<vendor_name>-<attribute_name>"]`` settable for a vendor
attribute the dictionary lacks (authentik's docs: ``define_attribute(vendor_code=9, vendor_name="Cisco",
attribute_name="AV-Pair", attribute_code=1, attribute_type="string")`` then ``packet["Cisco-AV-Pair"] =
"shell:priv-lvl=15"``). The expression sets attributes on ``packet`` (``packet["Tunnel-Private-Group-Id:1"] =
"42"``, a list for several values, ``packet.AddAttribute(name, value)`` to append) and returns it (returning
nothing keeps what it set; returning a dict sets its items).

A mapping that fails (an exception, the timeout, a name the dictionary lacks, a value that does not fit, a return
value that is not the packet) is skipped, not the login: a ``configuration_error`` event names it and the error,
a log line too, and the Accept carries the other mappings' attributes (each mapping works on a copy of the packet
so far, so a failing one leaves nothing half-set). authentik also records the event and still accepts; it drops
every mapping's attributes then, Gatehouse only the failing one's.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from core.events.record import record
from core.policies import expression
from core.policies.types import PolicyRequest
from core.providers.radius.reply import MAX_ATTRIBUTES, attribute_problem, reply_attributes
from protocols.radius.codec import VENDOR_TYPES, VendorAttribute, dictionary

LOGGER = logging.getLogger("gatehouse.providers.radius")
# A NAS retransmits after a few seconds and gives up after a few tries: a mapping gets less than that.
MAPPING_TIMEOUT = 5.0


class RadiusPacket:
    """``packet`` in a RADIUS property mapping: attribute names (``:N`` for an RFC 2868 tag) -> values.

    authentik hands a pyrad ``AuthPacket``; Gatehouse hands this plain, picklable collector (the expression may
    run in an evaluator process, core/policies/isolation.py, and a pyrad packet would carry a secret there). It
    has pyrad's item access and ``AddAttribute`` and checks every value as it is set, so the error names it:
    a name the dictionary lacks (define it first with ``define_attribute``), a value that is not a string or an
    integer, or one its vendor type cannot encode."""

    def __init__(self):
        self.values: dict[str, list] = {}
        self.vendor: dict[str, tuple[int, int, str]] = {}

    def define_attribute(self, vendor_code: int, vendor_name: str, attribute_name: str, attribute_code: int,
                         attribute_type: str) -> str:
        name = f"{vendor_name}-{attribute_name}"
        if attribute_type not in VENDOR_TYPES:
            raise ValueError(f"define_attribute {name!r}: attribute_type {attribute_type!r} is not one of "
                             f"{', '.join(sorted(VENDOR_TYPES))}")
        for label, value, top in (("vendor_code", vendor_code, 2 ** 24), ("attribute_code", attribute_code, 256)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < top:
                raise ValueError(f"define_attribute {name!r}: {label} {value!r} is not an integer 1..{top - 1}")
        self.vendor[name] = (vendor_code, attribute_code, attribute_type)
        return name

    def _check(self, name: Any, value: Any) -> None:
        if isinstance(name, str) and name in self.vendor:
            vendor, code, kind = self.vendor[name]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ValueError(f"{name!r}: expected a string or an integer, got {type(value).__name__}")
            VendorAttribute(vendor, code, kind, value, name).encode()  # raises ValueError naming the problem
            return
        attributes = dictionary().attributes
        problem = attribute_problem(name, value, lambda base: base in attributes)
        if problem:
            raise KeyError(f"{problem}; a vendor attribute needs define_attribute(...) first")

    def __setitem__(self, name: str, value: Any) -> None:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        for item in values:
            self._check(name, item)
        self.values[name] = values

    def AddAttribute(self, name: str, value: Any) -> None:  # noqa: N802 - pyrad's name
        self._check(name, value)
        self.values.setdefault(name, []).append(value)

    def __getitem__(self, name: str) -> list:
        return list(self.values[name])

    def __delitem__(self, name: str) -> None:
        del self.values[name]

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        return list(self.values[name]) if name in self.values else default

    def keys(self) -> list[str]:
        return list(self.values)

    def reply_attributes(self) -> list[dict]:
        """The AuthAnswer's ``reply_attributes``; a vendor attribute carries its vendor, code and type."""
        out = []
        for name, values in self.values.items():
            for value in values:
                if name in self.vendor:
                    vendor, code, kind = self.vendor[name]
                    out.append({"name": name, "value": value, "vendor": vendor, "code": code, "type": kind})
                else:
                    out.append({"name": name, "value": value})
        return out


def wrap(source: str) -> str:
    """The mapping as the body of a nested function whose result is handed back through ``context`` (the
    evaluator reports only truthiness), as core/oidc/claims.py does for scope mappings."""
    body = "\n".join(f"    {line}" for line in (source or "").splitlines()) or "    return packet"
    return ("provider = context['provider']\npacket = context['packet']\nuser = request.user\n"
            "define_attribute = packet.define_attribute\n"
            f"def mapping():\n{body}\ncontext['mapping_result'] = mapping()\nreturn True\n")


def _result(context: dict) -> RadiusPacket:
    result, packet = context.get("mapping_result"), context["packet"]
    if result is None:
        return packet
    if isinstance(result, dict):
        for name, value in result.items():
            packet[name] = value
        return packet
    if not isinstance(result, RadiusPacket):
        raise TypeError(f"returned {type(result).__name__}; return packet (or nothing, or a dict of attributes)")
    return result


def mapping_attributes(provider, user) -> list[dict]:
    """The reply attributes of ``provider``'s RADIUS property mappings for ``user``, in name order."""
    from core.providers.radius.models import RadiusProviderPropertyMapping

    mappings = list(RadiusProviderPropertyMapping.objects.filter(provider=provider).order_by("name"))
    packet = RadiusPacket()
    for mapping in mappings:
        context = {"provider": provider, "packet": copy.deepcopy(packet)}
        try:
            expression.evaluate(wrap(mapping.expression), PolicyRequest(user=user, context=context),
                                timeout=MAPPING_TIMEOUT)
            packet = _result(context)
        except Exception as exc:  # noqa: BLE001 - admin-authored code: record, skip this mapping, go on
            error = f"{type(exc).__name__}: {exc}"
            LOGGER.warning("RADIUS property mapping skipped", extra={
                "mapping": mapping.name, "provider": provider.name, "user": user.username, "error": error})
            record("configuration_error", user=user, mapping=mapping.name, provider=provider.name,
                   message=f"RADIUS property mapping {mapping.name!r} failed: {error}; the Access-Accept is "
                           "sent without its attributes")
    return packet.reply_attributes()


def accept_attributes(provider, user) -> list[dict]:
    """Everything an Access-Accept carries for ``user``: the property mappings' attributes, and the user's or a
    group's ``radius_reply_attributes`` (reply.py) for attributes no mapping set."""
    mapped = mapping_attributes(provider, user)
    taken = {a["name"].partition(":")[0] for a in mapped}
    grouped = [a for a in reply_attributes(user) if a["name"].partition(":")[0] not in taken]
    return [*grouped, *mapped][:MAX_ATTRIBUTES]
