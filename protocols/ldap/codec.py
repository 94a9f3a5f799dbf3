"""LDAPv3 messages (RFC 4511) on ldap3's pyasn1 schema: framing, decoding requests, encoding responses.

Framing is hand-written on purpose: pyasn1 decodes one complete value and cannot tell "need more bytes" from
"garbage", and it recurses once per nesting level. So before pyasn1 sees a message, ``frame_length`` reads
the outer tag and length (definite lengths only, at most ``MAX_MESSAGE_BYTES``) and ``check_nesting`` walks
the TLVs iteratively, checking every inner length and refusing nesting deeper than ``MAX_DEPTH``.

Limits (documented in README "LDAP outpost"): one message at most 1 MiB (a bind or search request is a few
hundred bytes; ldapsearch with a large filter stays far below), BER nesting at most 64 levels (a filter
nested about 30 deep), at most 256 requested attributes and 64 controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldap3.protocol.rfc2696 import RealSearchControlValue
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    AddResponse,
    AttributeDescription,
    AttributeValue,
    BindResponse,
    CompareResponse,
    Control,
    Controls,
    DelResponse,
    ExtendedResponse,
    LDAPMessage,
    LDAPString,
    ModifyDNResponse,
    ModifyResponse,
    PartialAttribute,
    PartialAttributeList,
    ProtocolOp,
    ResponseName,
    ResponseValue,
    ResultCode,
    SearchResultDone,
    SearchResultEntry,
    Vals,
)
from pyasn1.codec.ber import decoder, encoder

from protocols.ldap import fastsearch
from protocols.ldap.asn1 import LDAP_MESSAGE
from protocols.ldap.filters import Filter, FilterError, from_asn1

MAX_MESSAGE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ATTRIBUTES = 256
MAX_CONTROLS = 64

# result codes (RFC 4511 §4.1.9)
SUCCESS = 0
OPERATIONS_ERROR = 1
PROTOCOL_ERROR = 2
SIZE_LIMIT_EXCEEDED = 4
COMPARE_FALSE = 5
COMPARE_TRUE = 6
AUTH_METHOD_NOT_SUPPORTED = 7
UNAVAILABLE_CRITICAL_EXTENSION = 12
CONFIDENTIALITY_REQUIRED = 13
NO_SUCH_ATTRIBUTE = 16
UNDEFINED_ATTRIBUTE_TYPE = 17
NO_SUCH_OBJECT = 32
INVALID_DN_SYNTAX = 34
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS_RIGHTS = 50
BUSY = 51
UNAVAILABLE = 52
UNWILLING_TO_PERFORM = 53
OTHER = 80

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
STARTTLS_OID = "1.3.6.1.4.1.1466.20037"
WHOAMI_OID = "1.3.6.1.4.1.4203.1.11.3"
NOTICE_OF_DISCONNECTION_OID = "1.3.6.1.4.1.1466.20036"

_RESPONSE_OF = {"modifyRequest": ("modifyResponse", ModifyResponse), "addRequest": ("addResponse", AddResponse),
                "delRequest": ("delResponse", DelResponse), "modDNRequest": ("modDNResponse", ModifyDNResponse)}


class LDAPProtocolError(ValueError):
    """Bytes that are not an LDAP message we accept: answer protocolError (notice of disconnection), close."""


# -- framing ---------------------------------------------------------------------------------------------
def _read_length(buf, pos: int, end: int) -> tuple[int, int] | None:
    """(length, position after the length octets), or None when the octets are not all there yet."""
    if pos >= end:
        return None
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0:
        raise LDAPProtocolError("indefinite BER length (not allowed in LDAP, RFC 4511 §5.1)")
    if count > 4:
        raise LDAPProtocolError(f"BER length of {count} octets exceeds the {MAX_MESSAGE_BYTES}-byte message limit")
    if pos + 1 + count > end:
        return None
    length = int.from_bytes(bytes(buf[pos + 1:pos + 1 + count]), "big")
    return length, pos + 1 + count


def _read_tag(buf, pos: int, end: int) -> tuple[int, bool, int] | None:
    """(first tag octet, constructed, position after the tag), or None when incomplete."""
    if pos >= end:
        return None
    first = buf[pos]
    pos += 1
    if first & 0x1F == 0x1F:  # high tag number form
        for _ in range(4):
            if pos >= end:
                return None
            octet = buf[pos]
            pos += 1
            if not octet & 0x80:
                break
        else:
            raise LDAPProtocolError("BER tag number too long")
    return first, bool(first & 0x20), pos


def frame_length(buf, limit: int = MAX_MESSAGE_BYTES) -> int | None:
    """Length in bytes of the complete LDAPMessage at the start of ``buf``; None when more bytes are needed.
    Raises LDAPProtocolError at once for a wrong outer tag or a length over ``limit`` (no unbounded buffer)."""
    end = len(buf)
    if not end:
        return None
    if buf[0] != 0x30:
        raise LDAPProtocolError(f"an LDAPMessage starts with a SEQUENCE (0x30), got 0x{buf[0]:02x}")
    read = _read_length(buf, 1, end)
    if read is None:
        return None
    length, start = read
    if length > limit:
        raise LDAPProtocolError(f"message of {length} bytes exceeds the {limit}-byte limit")
    total = start + length
    return total if total <= end else None


def check_nesting(data: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Walk every TLV of one complete message without recursion: each inner length must fit in its parent,
    and constructed values may nest at most ``max_depth`` deep."""
    stack = [len(data)]  # end offsets of the open constructed values
    pos = 0
    while pos < len(data):
        while stack and pos >= stack[-1]:
            if pos > stack[-1]:
                raise LDAPProtocolError("a BER value overruns the value that contains it")
            stack.pop()
        if not stack:
            raise LDAPProtocolError("bytes after the end of the message")
        tag = _read_tag(data, pos, stack[-1])
        if tag is None:
            raise LDAPProtocolError("truncated BER tag")
        _first, constructed, pos = tag
        read = _read_length(data, pos, stack[-1])
        if read is None:
            raise LDAPProtocolError("truncated BER length")
        length, pos = read
        if pos + length > stack[-1]:
            raise LDAPProtocolError("a BER value is longer than the value that contains it")
        if constructed:
            stack.append(pos + length)
            if len(stack) > max_depth + 1:
                raise LDAPProtocolError(f"BER nested deeper than {max_depth} levels")
        else:
            pos += length


# -- requests --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestControl:
    oid: str
    critical: bool = False
    value: bytes | None = None


@dataclass(frozen=True)
class Request:
    message_id: int
    controls: tuple[RequestControl, ...] = field(default=(), kw_only=True)

    def control(self, oid: str) -> RequestControl | None:
        return next((c for c in self.controls if c.oid == oid), None)


@dataclass(frozen=True)
class BindRequest(Request):
    version: int
    name: str
    password: bytes | None = field(repr=False)  # None: a SASL bind (mechanism in ``sasl_mechanism``)
    sasl_mechanism: str = ""

    def __repr__(self) -> str:  # never the password
        return f"BindRequest(message_id={self.message_id}, name={self.name!r}, sasl={self.sasl_mechanism!r})"


@dataclass(frozen=True)
class SearchRequest(Request):
    base: str
    scope: int  # 0 base, 1 one level, 2 subtree
    deref: int
    size_limit: int
    time_limit: int
    types_only: bool
    filter: Filter
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class UnbindRequest(Request):
    pass


@dataclass(frozen=True)
class AbandonRequest(Request):
    target: int


@dataclass(frozen=True)
class ExtendedRequest(Request):
    oid: str
    value: bytes | None


@dataclass(frozen=True)
class CompareRequest(Request):
    dn: str
    attribute: str
    value: str


@dataclass(frozen=True)
class UpdateRequest(Request):
    """add, modify, delete or modDN: Gatehouse's directory is read-only (answered 53)."""

    operation: str  # the protocolOp name, e.g. "addRequest"


@dataclass(frozen=True)
class FilterRejected(Request):
    """A search whose filter we do not evaluate (extensible match, or nested too deep): answered, not fatal."""

    code: int
    reason: str


def _text(value) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _controls(message) -> tuple[RequestControl, ...]:
    raw = message.getComponentByName("controls")
    if raw is None or not raw.isValue:
        return ()
    if len(raw) > MAX_CONTROLS:
        raise LDAPProtocolError(f"more than {MAX_CONTROLS} controls")
    out = []
    for control in raw:
        critical = control.getComponentByName("criticality")
        value = control.getComponentByName("controlValue")
        out.append(RequestControl(str(control["controlType"]),
                                  bool(critical) if critical is not None and critical.isValue else False,
                                  bytes(value) if value is not None and value.isValue else None))
    return tuple(out)


def decode_message(data: bytes) -> Request:
    """One complete message (as framed by ``frame_length``) -> a Request; LDAPProtocolError when malformed."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise LDAPProtocolError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    # searches without pyasn1 (fastsearch.py says why); what it accepts is well-formed and nested far less
    # than MAX_DEPTH (bounded lengths, filters to MAX_FILTER_DEPTH), so the nesting walk is not needed for it
    fast = fastsearch.decode(data, MAX_ATTRIBUTES, MAX_CONTROLS)
    if fast is not None:
        controls = tuple(RequestControl(*c) for c in fast.pop("controls"))
        return SearchRequest(controls=controls, **fast)
    return decode_message_asn1(data)


def decode_message_asn1(data: bytes) -> Request:
    """``decode_message`` through pyasn1 only (every request; the reference for fastsearch.py)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise LDAPProtocolError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    check_nesting(data)
    try:
        message, rest = decoder.decode(data, asn1Spec=LDAP_MESSAGE)
    except Exception as exc:  # noqa: BLE001 - pyasn1 raises many types for malformed input; all mean "not LDAP"
        raise LDAPProtocolError(f"not an LDAP message: {type(exc).__name__}") from None
    if rest:
        raise LDAPProtocolError("bytes after the end of the message")
    try:
        return _request(message)
    except LDAPProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - a value pyasn1 accepted but that has missing parts
        raise LDAPProtocolError(f"malformed LDAP message: {type(exc).__name__}") from None


def _request(message) -> Request:
    message_id = int(message["messageID"])
    controls = _controls(message)
    op = message["protocolOp"]
    name = op.getName()
    body = op.getComponent()
    if name == "bindRequest":
        auth = body["authentication"]
        kind = auth.getName()
        if kind == "simple":
            return BindRequest(message_id, int(body["version"]), _text(body["name"]), bytes(auth.getComponent()),
                               controls=controls)
        mechanism = _text(auth.getComponent()["mechanism"]) if kind == "sasl" else kind
        return BindRequest(message_id, int(body["version"]), _text(body["name"]), None, mechanism,
                           controls=controls)
    if name == "searchRequest":
        attributes = body["attributes"]
        if len(attributes) > MAX_ATTRIBUTES:
            raise LDAPProtocolError(f"more than {MAX_ATTRIBUTES} requested attributes")
        common = dict(base=_text(body["baseObject"]), scope=int(body["scope"]),
                      deref=int(body["derefAliases"]), size_limit=int(body["sizeLimit"]),
                      time_limit=int(body["timeLimit"]), types_only=bool(body["typesOnly"]),
                      attributes=tuple(_text(a) for a in attributes))
        try:
            flt = from_asn1(body["filter"])
        except FilterError as exc:
            return FilterRejected(message_id, code=exc.code, reason=str(exc), controls=controls)
        return SearchRequest(message_id, filter=flt, controls=controls, **common)
    if name == "unbindRequest":
        return UnbindRequest(message_id, controls=controls)
    if name == "abandonRequest":
        return AbandonRequest(message_id, int(body), controls=controls)
    if name == "extendedReq":
        value = body.getComponentByName("requestValue")
        return ExtendedRequest(message_id, str(body["requestName"]),
                               bytes(value) if value is not None and value.isValue else None, controls=controls)
    if name == "compareRequest":
        ava = body["ava"]
        return CompareRequest(message_id, _text(body["entry"]), _text(ava["attributeDesc"]),
                              _text(ava["assertionValue"]), controls=controls)
    if name in _RESPONSE_OF:
        return UpdateRequest(message_id, name, controls=controls)
    raise LDAPProtocolError(f"{name} is not a request a client sends")


# -- responses -------------------------------------------------------------------------------------------
def _envelope(message_id: int, op_name: str, body, controls: list | None = None) -> bytes:
    message = LDAPMessage()
    message["messageID"] = message_id
    op = ProtocolOp()
    op.setComponentByName(op_name, body)
    message["protocolOp"] = op
    if controls:
        wrapped = Controls()
        for i, control in enumerate(controls):
            wrapped.setComponentByPosition(i, control)
        message["controls"] = wrapped
    return encoder.encode(message)


def _fill_result(body, code: int, message: str, matched: str = ""):
    body["resultCode"] = ResultCode(code)
    body["matchedDN"] = LDAPDN(matched)
    body["diagnosticMessage"] = LDAPString(message)
    return body


def bind_response(message_id: int, code: int, message: str = "") -> bytes:
    return _envelope(message_id, "bindResponse", _fill_result(BindResponse(), code, message))


def _integer(value: int) -> bytes:
    """The content octets of an INTEGER/ENUMERATED (two's complement, shortest)."""
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def search_done(message_id: int, code: int, message: str = "", *, paged_cookie: bytes | None = None,
                paged_size: int = 0) -> bytes:
    """searchResDone, encoded directly as ``search_entry``: it ends every search, and pyasn1's encoder took
    ~0.2 ms of a cached lookup's ~0.6 ms. ``search_done_asn1`` is the pyasn1 encoding it must equal byte for
    byte (tests/protocols/ldap/test_codec.py)."""
    op = _tlv(0x65, _tlv(0x0A, _integer(code)) + _octets(b"") + _octets(message))  # [APPLICATION 5] LDAPResult
    controls = b""
    if paged_cookie is not None:  # [0] Controls: the paged-results control, criticality FALSE (the DEFAULT: omitted)
        value = _tlv(0x30, _tlv(0x02, _integer(paged_size)) + _octets(paged_cookie))
        controls = _tlv(0xA0, _tlv(0x30, _octets(PAGED_RESULTS_OID) + _octets(value)))
    return _tlv(0x30, _tlv(0x02, _integer(message_id)) + op + controls)


def search_done_asn1(message_id: int, code: int, message: str = "", *, paged_cookie: bytes | None = None,
                     paged_size: int = 0) -> bytes:
    controls = None
    if paged_cookie is not None:
        value = RealSearchControlValue()
        value["size"] = paged_size
        value["cookie"] = paged_cookie
        control = Control()
        control["controlType"] = PAGED_RESULTS_OID
        control["criticality"] = False
        control["controlValue"] = encoder.encode(value)
        controls = [control]
    return _envelope(message_id, "searchResDone", _fill_result(SearchResultDone(), code, message), controls)


def _tlv(tag: int, content: bytes) -> bytes:
    return _head(tag, len(content)) + content


def _octets(value: str | bytes) -> bytes:
    try:
        raw = value.encode("utf-8") if isinstance(value, str) else value
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\\ud800"): not UTF-8; sent as U+FFFD
        raw = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")
    if len(raw) < 0x80:  # the usual case, inlined: this runs for every value of every entry sent
        return bytes((0x04, len(raw))) + raw
    return _tlv(0x04, raw)


def partial_attribute(name: str, values) -> bytes:
    """One PartialAttribute (``SEQUENCE { type, SET OF value }``) of a searchResEntry. The cached directory
    keeps its entries as these bytes (protocols/ldap/search.py ``Entry``), encoded once per directory, so an
    answer only splices the requested ones into ``search_entry_encoded``. A value that is not valid UTF-8
    text (a lone surrogate from the core's JSON) is sent with U+FFFD in its place."""
    octets = _octets
    return _tlv(0x30, octets(name) + _tlv(0x31, b"".join([octets(v) for v in values])))


def partial_attribute_values(data: bytes, start: int, stop: int) -> tuple[str, ...]:
    """The values of the PartialAttribute ``partial_attribute`` wrote at ``data[start:stop]``, as text."""
    # short lengths (under 128) read inline: a scan decodes an attribute of every entry in scope
    pos = start + 2 if data[start + 1] < 0x80 else _header(data, start)[1]  # into the SEQUENCE
    length = data[pos + 1]
    pos = pos + 2 + length if length < 0x80 else sum(_header(data, pos))  # past the type
    pos = pos + 2 if data[pos + 1] < 0x80 else _header(data, pos)[1]  # into the SET
    if pos < stop and data[pos + 1] < 0x80 and pos + 2 + data[pos + 1] == stop:  # one short value, the usual case
        return (data[pos + 2:stop].decode("utf-8", errors="replace"),)
    out = []
    while pos < stop:
        length, pos = _header(data, pos)
        out.append(data[pos:pos + length].decode("utf-8", errors="replace"))
        pos += length
    return tuple(out)


def _header(data: bytes, pos: int) -> tuple[int, int]:
    """(length, content offset) of the TLV at ``pos`` in bytes this module encoded (one-octet tags)."""
    first = data[pos + 1]
    if first < 0x80:
        return first, pos + 2
    count = first & 0x7F
    return int.from_bytes(data[pos + 2:pos + 2 + count], "big"), pos + 2 + count


def search_entry_encoded(message_id: int, dn: str, attributes: bytes) -> bytes:
    """searchResEntry from its PartialAttributes already encoded (``partial_attribute``, concatenated)."""
    # the headers worked out from the lengths and everything joined once: nesting _tlv calls copied the
    # attributes once per level, a third of a 200-entry listing's time
    name = _octets(dn)
    number = message_id.to_bytes(max(1, (message_id.bit_length() + 8) // 8), "big")  # INTEGER, two's complement
    attributes_head = _head(0x30, len(attributes))
    op_length = len(name) + len(attributes_head) + len(attributes)
    op_head = _head(0x64, op_length)  # [APPLICATION 4] constructed
    message_length = 2 + len(number) + len(op_head) + op_length
    return b"".join((_head(0x30, message_length), bytes((0x02, len(number))), number, op_head, name, attributes_head,
                     attributes))


def _head(tag: int, n: int) -> bytes:
    """A tag and the definite length ``n`` (BER, shortest form)."""
    if n < 0x80:
        return bytes((tag, n))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw


def search_entry(message_id: int, dn: str, attributes: list[tuple[str, list[str] | tuple[str, ...]]]) -> bytes:
    """searchResEntry, encoded directly: the one message sent per entry, fixed in shape, where pyasn1's
    encoder costs about 1 ms an entry (10 s for 10,000). ``search_entry_asn1`` is the pyasn1 encoding it
    must equal byte for byte (tests/protocols/ldap/test_codec.py)."""
    return search_entry_encoded(message_id, dn, b"".join([partial_attribute(n, v) for n, v in attributes]))


def search_entry_asn1(message_id: int, dn: str, attributes: list[tuple[str, list[str]]]) -> bytes:
    body = SearchResultEntry()
    body["object"] = LDAPDN(dn)
    attrs = PartialAttributeList()
    for i, (name, values) in enumerate(attributes):
        attr = PartialAttribute()
        attr["type"] = AttributeDescription(name)
        vals = Vals()
        for j, value in enumerate(values):
            vals.setComponentByPosition(j, AttributeValue(value.encode("utf-8") if isinstance(value, str) else value))
        attr["vals"] = vals
        attrs.setComponentByPosition(i, attr)
    body["attributes"] = attrs
    return _envelope(message_id, "searchResEntry", body)


def extended_response(message_id: int, code: int, message: str = "", *, name: str | None = None,
                      value: bytes | None = None) -> bytes:
    body = _fill_result(ExtendedResponse(), code, message)
    if name is not None:
        body["responseName"] = ResponseName(name)
    if value is not None:
        body["responseValue"] = ResponseValue(value)
    return _envelope(message_id, "extendedResp", body)


def compare_response(message_id: int, code: int, message: str = "") -> bytes:
    return _envelope(message_id, "compareResponse", _fill_result(CompareResponse(), code, message))


def update_response(request: UpdateRequest, code: int, message: str) -> bytes:
    op_name, cls = _RESPONSE_OF[request.operation]
    return _envelope(request.message_id, op_name, _fill_result(cls(), code, message))


def notice_of_disconnection(code: int = PROTOCOL_ERROR, message: str = "") -> bytes:
    """RFC 4511 §4.4.1: an unsolicited notification (messageID 0) sent before the server closes."""
    return extended_response(0, code, message, name=NOTICE_OF_DISCONNECTION_OID)


def paged_control(request: Request) -> tuple[int, bytes] | None:
    """(page size, cookie) of a paged-results control (RFC 2696), None when absent; LDAPProtocolError when
    its value does not decode."""
    control = request.control(PAGED_RESULTS_OID)
    if control is None:
        return None
    try:
        value, rest = decoder.decode(control.value or b"", asn1Spec=RealSearchControlValue())
        if rest:
            raise ValueError
        return int(value["size"]), bytes(value["cookie"])
    except Exception:  # noqa: BLE001 - any malformed control value
        raise LDAPProtocolError("the paged results control value is not a realSearchControlValue") from None
