"""RADIUS codec, sans-IO: bytes in, frozen values out; frozen values in, bytes out (RFC 2865, 2866, 3579,
5997). pyrad's dictionary and packet code do the attribute work; this module adds what pyrad leaves to its
caller, strictly (THREATS 15, 16):

- the packet walk: Length within 20..4096 and within the datagram, every attribute at least 2 octets and
  inside the packet, the attributes ending exactly at Length (pyrad's DecodePacket accepts a truncated
  last attribute and up to 8192 octets, so it only runs after this walk);
- at most one Message-Authenticator, 16 octets, verified in constant time (pyrad's
  ``verify_message_authenticator``, hmac.compare_digest) and required on Status-Server, and on
  Access-Request unless the caller opts out for an old device;
- the Accounting-Request authenticator (RFC 2866 §3), compared with hmac.compare_digest;
- User-Password (RFC 2865 §5.2): one, 16..128 octets in steps of 16, decrypted by pyrad's PwDecrypt.

Every problem raises DecodeError; the server drops the datagram silently (RFC 2865 §3 and §4.1). The pyrad
packets live only inside the functions below: callers get a frozen Request (no secret in it, the password
hidden from repr) and reply bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pyrad import packet as rp
from pyrad import tools
from pyrad.dictionary import Dictionary

DICTIONARY_PATH = Path(__file__).with_name("dictionary")
HEADER = 20
MAX_PACKET = 4096  # RFC 2865 §3: "The maximum length is 4096"
USER_PASSWORD = 2
CHAP_PASSWORD = 3
PROXY_STATE = 33
EAP_MESSAGE = 79
MESSAGE_AUTHENTICATOR = 80
ZERO16 = b"\x00" * 16
VENDOR_SPECIFIC = 26
# The value types a vendor attribute outside the dictionary may have (pyrad's tools.EncodeAttr names them).
VENDOR_TYPES = frozenset({"string", "octets", "integer", "signed", "short", "byte", "integer64", "ipaddr",
                          "ipv6addr", "ipv6prefix", "date"})


class Code(IntEnum):
    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    STATUS_SERVER = 12


REQUEST_CODES = frozenset({Code.ACCESS_REQUEST, Code.ACCOUNTING_REQUEST, Code.STATUS_SERVER})
REPLY_CODES = {
    Code.ACCESS_REQUEST: frozenset({Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE}),
    Code.ACCOUNTING_REQUEST: frozenset({Code.ACCOUNTING_RESPONSE}),
    # RFC 5997 §3: Access-Accept on the authentication port, Accounting-Response on the accounting port
    Code.STATUS_SERVER: frozenset({Code.ACCESS_ACCEPT, Code.ACCOUNTING_RESPONSE}),
}


class DecodeError(ValueError):
    """A datagram to drop. ``reason`` is a short stable word for logs and metrics; the message says more."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class VendorAttribute:
    """A Vendor-Specific attribute (RFC 2865 §5.26) that the dictionary does not define: what authentik's
    ``define_attribute(vendor_code, vendor_name, attribute_name, attribute_code, attribute_type)`` declares in a
    RADIUS property mapping. Encoded as one Vendor-Specific attribute holding the vendor id and one sub-attribute
    (type ``code``, the usual one-octet type and length, RFC 2865 §5.26's suggested format) by pyrad, which
    packs a ``(vendor, code)`` key that way; the value by pyrad's ``tools.EncodeAttr`` for ``type``."""

    vendor: int
    code: int
    type: str
    value: Any
    name: str = ""

    def encode(self) -> bytes:
        """The sub-attribute's value octets; ValueError naming the attribute when it cannot be sent."""
        label = self.name or f"vendor {self.vendor} attribute {self.code}"
        if not (isinstance(self.vendor, int) and 0 < self.vendor < 2 ** 24):
            raise ValueError(f"{label}: vendor code {self.vendor!r} is not an SMI enterprise number (1..16777215)")
        if not (isinstance(self.code, int) and 0 < self.code < 256):
            raise ValueError(f"{label}: attribute code {self.code!r} is not 1..255")
        if self.type not in VENDOR_TYPES:
            raise ValueError(f"{label}: attribute type {self.type!r} is not one of {', '.join(sorted(VENDOR_TYPES))}")
        try:
            raw = tools.EncodeAttr(self.type, self.value)
        except (TypeError, ValueError, struct.error, OSError) as exc:
            raise ValueError(f"{label}: {str(self.value)[:40]!r} is not a valid {self.type} value ({exc})") from None
        if len(raw) > 247:  # 255 - 2 (attribute header) - 4 (vendor id) - 2 (sub-attribute header)
            raise ValueError(f"{label}: the value is {len(raw)} octets, more than 247")
        return raw


@lru_cache(maxsize=1)
def dictionary() -> Dictionary:
    return Dictionary(str(DICTIONARY_PATH))


@dataclass(frozen=True)
class Header:
    code: int
    identifier: int
    length: int
    authenticator: bytes


@dataclass(frozen=True)
class Request:
    """One verified request. ``attributes``: (dictionary name or code, decoded value) in packet order, without
    User-Password and Message-Authenticator; ``password``: the decrypted User-Password (PAP), never in repr."""

    code: Code
    identifier: int
    authenticator: bytes
    attributes: tuple[tuple[Any, Any], ...]
    proxy_state: tuple[bytes, ...] = ()
    message_authenticator: bool = False  # present (and then verified)
    password: str | None = field(default=None, repr=False)

    def values(self, name: str) -> tuple:
        return tuple(v for k, v in self.attributes if k == name)

    def get(self, name: str, default: Any = None) -> Any:
        for key, value in self.attributes:
            if key == name:
                return value
        return default

    @property
    def user_name(self) -> str:
        return self.get("User-Name") or ""

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.attributes)


def walk(data: bytes) -> tuple[Header, tuple[tuple[int, bytes], ...]]:
    """The header and the raw (type, value) attributes, checked octet by octet (RFC 2865 §3, §5). Octets past
    Length are padding and ignored (§3)."""
    if len(data) < HEADER:
        raise DecodeError("length", f"datagram of {len(data)} octets is shorter than the 20-octet header")
    if len(data) > MAX_PACKET:
        raise DecodeError("length", f"datagram of {len(data)} octets exceeds {MAX_PACKET}")
    code, identifier, length = struct.unpack("!BBH", data[:4])
    if not HEADER <= length <= MAX_PACKET:
        raise DecodeError("length", f"Length field {length} is outside 20..{MAX_PACKET}")
    if length > len(data):
        raise DecodeError("length", f"Length field {length} exceeds the datagram's {len(data)} octets")
    attributes = []
    at = HEADER
    while at < length:
        if length - at < 2:
            raise DecodeError("attribute", f"truncated attribute header at offset {at}")
        kind, size = data[at], data[at + 1]
        if size < 2 or at + size > length:
            raise DecodeError("attribute", f"attribute {kind} at offset {at} has length {size}, "
                                           f"{length - at} octets remain")
        attributes.append((kind, data[at + 2:at + size]))
        at += size
    return Header(code, identifier, length, data[4:20]), tuple(attributes)


def _message_authenticator(data: bytes, vector: bytes, secret: bytes) -> bytes:
    """HMAC-MD5 over the packet with ``vector`` as authenticator and the Message-Authenticator zeroed
    (RFC 3579 §3.2). ``data`` is exactly Length octets and carries one Message-Authenticator."""
    out, at = bytearray(data), HEADER
    out[4:20] = vector
    while at < len(out):
        if out[at] == MESSAGE_AUTHENTICATOR:
            out[at + 2:at + 18] = ZERO16
        at += out[at + 1]
    return hmac.new(secret, bytes(out), hashlib.md5).digest()


def response_authenticator(reply_without_authenticator: bytes, request_authenticator: bytes,
                           secret: bytes) -> bytes:
    """RFC 2865 §3: MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret)."""
    head, attributes = reply_without_authenticator[:4], reply_without_authenticator[HEADER:]
    return hashlib.md5(head + request_authenticator + attributes + secret).digest()  # noqa: S324 - the RFC's


def decode_request(data: bytes, secret: bytes, *, require_message_authenticator: bool = True) -> Request:
    """Verify and decode a request from a client whose shared secret is ``secret``."""
    header, raw = walk(data)
    if header.code not in REQUEST_CODES:
        raise DecodeError("code", f"code {header.code} is not a request this server answers")
    packet = data[:header.length]
    code = Code(header.code)
    authenticators = [v for k, v in raw if k == MESSAGE_AUTHENTICATOR]
    if len(authenticators) > 1 or any(len(v) != 16 for v in authenticators):
        raise DecodeError("message_authenticator", "more than one Message-Authenticator, or not 16 octets")
    has_ma = bool(authenticators)
    if code == Code.ACCOUNTING_REQUEST:
        expected = response_authenticator(packet[:4] + ZERO16 + packet[HEADER:], ZERO16, secret)
        if not hmac.compare_digest(expected, header.authenticator):
            raise DecodeError("authenticator", "the Accounting-Request authenticator does not match the "
                                               "shared secret (RFC 2866 §3)")
        vector = ZERO16
    else:
        vector = header.authenticator
        needed = code == Code.STATUS_SERVER or require_message_authenticator or any(
            k == EAP_MESSAGE for k, _ in raw)
        if needed and not has_ma:
            raise DecodeError("message_authenticator_missing", f"{code.name} without Message-Authenticator")
    if has_ma and not hmac.compare_digest(_message_authenticator(packet, vector, secret), authenticators[0]):
        raise DecodeError("message_authenticator", "the Message-Authenticator does not match the shared secret")
    passwords = [v for k, v in raw if k == USER_PASSWORD]
    if len(passwords) > 1 or any(not 16 <= len(v) <= 128 or len(v) % 16 for v in passwords):
        raise DecodeError("password", "User-Password must be one attribute of 16..128 octets in steps of 16")
    if passwords and code != Code.ACCESS_REQUEST:
        raise DecodeError("password", f"User-Password in a {code.name}")
    try:
        cls = rp.AcctPacket if code == Code.ACCOUNTING_REQUEST else rp.AuthPacket
        pyrad_packet = cls(code=header.code, id=header.identifier, secret=secret, dict=dictionary(), packet=packet)
        password = pyrad_packet.PwDecrypt(passwords[0]) if passwords else None
        attributes = []
        for key in pyrad_packet.keys():
            if key in ("User-Password", "Message-Authenticator", USER_PASSWORD, MESSAGE_AUTHENTICATOR):
                continue
            attributes.extend((key, value) for value in pyrad_packet[key])
    except DecodeError:
        raise
    except Exception as exc:  # pyrad raises PacketError, ValueError, struct.error, UnicodeDecodeError, ...
        raise DecodeError("attribute", f"cannot decode the attributes: {type(exc).__name__}: {exc}") from None
    return Request(code=code, identifier=header.identifier, authenticator=header.authenticator,
                   attributes=tuple(attributes), proxy_state=tuple(v for k, v in raw if k == PROXY_STATE),
                   message_authenticator=has_ma, password=password)


def encode_reply(request: Request, code: Code, secret: bytes,
                 attributes: Iterable[tuple[str, Any]] = ()) -> bytes:
    """A reply to ``request``, with its Proxy-State attributes (RFC 2865 §5.33), the Response Authenticator
    and always a Message-Authenticator (BlastRADIUS; RFC 3579 §3.2, RFC 5997 §3). ``attributes`` are
    dictionary names (``"Tunnel-Type:1"`` for a tag) and values. Raises ValueError for a reply code that does
    not answer the request's code, or an attribute the dictionary does not know or that does not fit. A
    VendorAttribute among them is sent as a Vendor-Specific attribute outside the dictionary."""
    if code not in REPLY_CODES[request.code]:
        raise ValueError(f"{Code(code).name} does not answer {request.code.name}")
    cls = rp.AcctPacket if request.code == Code.ACCOUNTING_REQUEST or code == Code.ACCOUNTING_RESPONSE \
        else rp.AuthPacket
    original = cls(code=int(request.code), id=request.identifier, secret=secret,
                   authenticator=request.authenticator, dict=dictionary())
    if request.proxy_state:
        original[PROXY_STATE] = list(request.proxy_state)
    reply = original.CreateReply()
    reply.code = int(code)
    _add(reply, attributes)
    reply.message_authenticator = True
    out = reply.ReplyPacket()
    if len(out) > MAX_PACKET:
        raise ValueError(f"the reply is {len(out)} octets, more than {MAX_PACKET}: send fewer attributes")
    return out


def _add(pkt: rp.Packet, attributes: Iterable) -> None:
    for item in attributes:
        if isinstance(item, VendorAttribute):
            OrderedDict.setdefault(pkt, (item.vendor, item.code), []).append(item.encode())
            continue
        name, value = item
        try:
            pkt.AddAttribute(name, value)
        except KeyError:
            raise ValueError(f"reply attribute {name!r} is not in the RADIUS dictionary "
                             f"({DICTIONARY_PATH})") from None


def attribute_items(raw: Any) -> tuple[list, list[str]]:
    """The core's ``reply_attributes`` ([[name, value], ...] or [{"name": .., "value": ..}, ...]) as items for
    encode_reply: (name, value) pairs, and a VendorAttribute for an entry with ``vendor``, ``code`` and ``type``
    (a RADIUS property mapping's ``define_attribute``); malformed entries are skipped and named."""
    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    items, problems = [], []
    for item in raw or ():
        if isinstance(item, dict) and "vendor" in item:
            vendor, code, kind, value = item.get("vendor"), item.get("code"), item.get("type"), item.get("value")
            if integer(vendor) and integer(code) and isinstance(kind, str) and isinstance(value, (str, int)):
                items.append(VendorAttribute(vendor, code, kind, value, str(item.get("name") or "")))
            else:
                problems.append(f"vendor reply attribute {str(item)[:80]!r} lacks an integer vendor and code, "
                                "a type or a value")
            continue
        if isinstance(item, dict):
            item = (item.get("name"), item.get("value"))
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) \
                and isinstance(item[1], (str, int, bytes)):
            items.append((item[0], item[1]))
        else:
            problems.append(f"reply attribute {str(item)[:60]!r} is not [name, value]")
    return items, problems


def encode_attributes(secret: bytes, attributes: Iterable) -> bytes:
    """authentik's ``check_access`` ``attributes`` (before base64): an Access-Request packet that only carries
    ``attributes``; authentik's outpost parses it with the shared secret and copies every attribute into its
    Access-Accept. ValueError as encode_reply."""
    pkt = rp.AuthPacket(code=int(Code.ACCESS_REQUEST), id=0, secret=secret, dict=dictionary())
    _add(pkt, attributes)
    out = pkt.RequestPacket()
    if len(out) > MAX_PACKET:
        raise ValueError(f"the attributes take {len(out)} octets, more than {MAX_PACKET}: send fewer")
    return out


def encode_request(code: Code, secret: bytes, identifier: int, authenticator: bytes,
                   attributes: Sequence[tuple[str, Any]] = (), *, password: str | None = None,
                   message_authenticator: bool = True) -> bytes:
    """A client's request (tests and tools): User-Password encrypted with ``authenticator`` (RFC 2865 §5.2),
    an Accounting-Request's authenticator computed (RFC 2866 §3)."""
    cls = rp.AcctPacket if code == Code.ACCOUNTING_REQUEST else rp.AuthPacket
    kwargs = {} if code == Code.ACCOUNTING_REQUEST else {"authenticator": authenticator}
    pkt = cls(code=int(code), id=identifier, secret=secret, dict=dictionary(), **kwargs)
    for name, value in attributes:
        pkt.AddAttribute(name, value)
    if password is not None:
        pkt[USER_PASSWORD] = [pkt.PwCrypt(password)]
    if message_authenticator:
        pkt.add_message_authenticator()
    return pkt.RequestPacket()


def raw_attributes(data: bytes) -> OrderedDict:
    """The attributes of a well-formed packet by type (tests and logs)."""
    out: OrderedDict = OrderedDict()
    for kind, value in walk(data)[1]:
        out.setdefault(kind, []).append(value)
    return out
