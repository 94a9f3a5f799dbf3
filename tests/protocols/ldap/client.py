"""Client-side encoding for the tests: requests built with ldap3's own operation builders (an independent
implementation of the client side), responses decoded with pyasn1 on ldap3's schema."""

from __future__ import annotations

from ldap3.operation.abandon import abandon_operation
from ldap3.operation.bind import bind_operation
from ldap3.operation.compare import compare_operation
from ldap3.operation.extended import extended_operation
from ldap3.operation.search import search_operation
from ldap3.operation.unbind import unbind_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc2696 import RealSearchControlValue, paged_search_control
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from pyasn1.codec.ber import decoder, encoder


def message(message_id: int, op_name: str, body, controls=None) -> bytes:
    msg = LDAPMessage()
    msg["messageID"] = MessageID(message_id)
    msg["protocolOp"] = ProtocolOp().setComponentByName(op_name, body)
    built = build_controls_list(controls)
    if built is not None:
        msg["controls"] = built
    return encoder.encode(msg)


def bind(message_id: int, name: str, password: str) -> bytes:
    return message(message_id, "bindRequest", bind_operation(3, "SIMPLE", name, password))


def anonymous_bind(message_id: int = 1) -> bytes:
    from ldap3.protocol.rfc4511 import AuthenticationChoice, BindRequest, Simple
    body = BindRequest()
    body["version"] = 3
    body["name"] = ""
    body["authentication"] = AuthenticationChoice().setComponentByName("simple", Simple(b""))
    return message(message_id, "bindRequest", body)


def search(message_id: int, base: str, flt: str = "(objectClass=*)", scope: int = 2, attributes=None,
           size_limit: int = 0, types_only: bool = False, paged: tuple[int, bytes] | None = None) -> bytes:
    body = search_operation(base, flt, scope, 0, attributes if attributes is not None else ["*"], size_limit, 0,
                            types_only, False, False)
    controls = [paged_search_control(False, paged[0], paged[1])] if paged else None
    return message(message_id, "searchRequest", body, controls)


def unbind(message_id: int) -> bytes:
    return message(message_id, "unbindRequest", unbind_operation())


def abandon(message_id: int, target: int) -> bytes:
    return message(message_id, "abandonRequest", abandon_operation(target))


def extended(message_id: int, oid: str, value=None) -> bytes:
    return message(message_id, "extendedReq", extended_operation(oid, value))


def compare(message_id: int, dn: str, attr: str, value: str) -> bytes:
    return message(message_id, "compareRequest", compare_operation(dn, attr, value, False))


def decode_all(data: bytes) -> list[dict]:
    """Every response in ``data`` as a dict: id, op, code, message, dn, attributes, cookie, name, value."""
    out = []
    while data:
        msg, data = decoder.decode(data, asn1Spec=LDAPMessage())
        op = msg["protocolOp"]
        name, body = op.getName(), op.getComponent()
        item = {"id": int(msg["messageID"]), "op": name}
        if name == "searchResEntry":
            item["dn"] = str(body["object"])
            item["attributes"] = {str(a["type"]): [bytes(v).decode() for v in a["vals"]] for a in body["attributes"]}
        else:
            item["code"] = int(body["resultCode"])
            item["message"] = str(body["diagnosticMessage"])
            if name == "extendedResp":
                rn, rv = body.getComponentByName("responseName"), body.getComponentByName("responseValue")
                item["name"] = str(rn) if rn is not None and rn.isValue else None
                item["value"] = bytes(rv) if rv is not None and rv.isValue else None
        controls = msg.getComponentByName("controls")
        if controls is not None and controls.isValue:
            for control in controls:
                if str(control["controlType"]) == "1.2.840.113556.1.4.319":
                    value, _ = decoder.decode(bytes(control["controlValue"]), asn1Spec=RealSearchControlValue())
                    item["cookie"] = bytes(value["cookie"])
        out.append(item)
    return out
