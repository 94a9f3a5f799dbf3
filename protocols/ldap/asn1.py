"""The request-side ASN.1 specification: ldap3's RFC 4511 schema with a Filter that decodes.

ldap3's ``Filter`` cannot decode nested filters (it only ever encodes them): its recursive members are
instances captured before the recursion was patched in (``Or.componentType = Filter()`` runs after
``Filter`` already holds an ``Or()`` with no component type, and the ``Not()`` inside ``Filter`` keeps the
untagged tag set), so pyasn1 fails on ``(|(a=1)(b=2))`` and ``(!(a=1))``. Here the Filter is unrolled to
``MAX_FILTER_DEPTH`` levels (as pyasn1-modules' rfc2251 does), each level sharing one child instance, so
building it is linear and a filter nested deeper simply does not decode (protocolError).
"""

from __future__ import annotations

from ldap3.protocol import rfc4511 as r
from pyasn1.type.namedtype import NamedType, NamedTypes, OptionalNamedType

from protocols.ldap.filters import MAX_FILTER_DEPTH

_LEAVES = ("equalityMatch", "substringFilter", "greaterOrEqual", "lessOrEqual", "present", "approxMatch",
           "extensibleMatch")


class _Filter(r.Filter):
    """Filter whose repr stays short: pyasn1 formats reprs of schema objects eagerly (NamedTypes'
    PostponedError messages), and the shared children make the default repr exponential in the depth."""

    def __repr__(self) -> str:
        return f"<Filter {self.getName() if self.isValue else 'schema'}>"


def _leaf_types() -> list[NamedType]:
    return [nt for nt in r.Filter.componentType.namedTypes if nt.name in _LEAVES]


def _filter(depth: int) -> r.Filter:
    if depth == 0:
        return _Filter(componentType=NamedTypes(*_leaf_types()))
    child = _filter(depth - 1)
    return _Filter(componentType=NamedTypes(
        NamedType("and", r.And(componentType=child)),
        NamedType("or", r.Or(componentType=child)),
        NamedType("not", r.Not(componentType=NamedTypes(NamedType("innerNotFilter", child)))),
        *_leaf_types()))


def _replace(named_types: NamedTypes, name: str, spec) -> NamedTypes:
    out = []
    for nt in named_types.namedTypes:
        if nt.name == name:
            nt = (OptionalNamedType if isinstance(nt, OptionalNamedType) else NamedType)(name, spec)
        out.append(nt)
    return NamedTypes(*out)


FILTER = _filter(MAX_FILTER_DEPTH)
SEARCH_REQUEST = r.SearchRequest(componentType=_replace(r.SearchRequest.componentType, "filter", FILTER))
PROTOCOL_OP = r.ProtocolOp(componentType=_replace(r.ProtocolOp.componentType, "searchRequest", SEARCH_REQUEST))
LDAP_MESSAGE = r.LDAPMessage(componentType=_replace(r.LDAPMessage.componentType, "protocolOp", PROTOCOL_OP))
