"""Vendor-Specific attributes outside the dictionary (a RADIUS property mapping's ``define_attribute``):
RFC 2865 §5.26 layout, the checks, and the core's reply_attributes entries read back."""

from __future__ import annotations

import os
import struct

import pytest

from protocols.radius.codec import (
    VENDOR_SPECIFIC,
    Code,
    VendorAttribute,
    attribute_items,
    decode_request,
    encode_reply,
    encode_request,
    raw_attributes,
)

SECRET = b"vendor-secret"


def _request():
    return decode_request(encode_request(Code.ACCESS_REQUEST, SECRET, 9, os.urandom(16), [("User-Name", "a")],
                                         password="pw"), SECRET)


def test_rfc_2865_layout():
    reply = encode_reply(_request(), Code.ACCESS_ACCEPT, SECRET, [
        VendorAttribute(9, 1, "string", "shell:priv-lvl=15", "Cisco-AV-Pair"),
        VendorAttribute(14988, 3, "integer", 7)])
    cisco, mikrotik = raw_attributes(reply)[VENDOR_SPECIFIC]
    assert cisco == struct.pack("!LBB", 9, 1, 2 + 17) + b"shell:priv-lvl=15"
    assert mikrotik == struct.pack("!LBBL", 14988, 3, 6, 7)


@pytest.mark.parametrize("attribute,message", [
    (VendorAttribute(0, 1, "string", "x"), "vendor code 0"),
    (VendorAttribute(9, 256, "string", "x"), "attribute code 256"),
    (VendorAttribute(9, 1, "float", "x"), "attribute type 'float'"),
    (VendorAttribute(9, 1, "integer", "ten"), "not a valid integer value"),
    (VendorAttribute(9, 1, "ipaddr", "not-an-ip"), "not a valid ipaddr value"),
    (VendorAttribute(9, 1, "string", "x" * 248), "more than 247"),
])
def test_what_cannot_be_sent_is_named(attribute, message):
    with pytest.raises(ValueError, match=message):
        encode_reply(_request(), Code.ACCESS_ACCEPT, SECRET, [attribute])


def test_attribute_items_reads_the_cores_entries():
    items, problems = attribute_items([
        {"name": "Filter-Id", "value": "x"}, ["Session-Timeout", 60],
        {"name": "Cisco-AV-Pair", "value": "a=b", "vendor": 9, "code": 1, "type": "string"},
        {"name": "bad", "value": "a", "vendor": "9", "code": 1, "type": "string"}, "junk"])
    assert items == [("Filter-Id", "x"), ("Session-Timeout", 60), VendorAttribute(9, 1, "string", "a=b",
                                                                                   "Cisco-AV-Pair")]
    assert len(problems) == 2 and "vendor" in problems[0]
