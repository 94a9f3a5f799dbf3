"""protocols/ldap: framing, decoding, encoding and the Connection, without sockets."""

import random

import pytest

from protocols.ldap import codec
from protocols.ldap.connection import Connection, ProtocolViolation
from protocols.ldap.search import Entry
from tests.protocols.ldap import client


def test_bind_decodes_and_hides_password():
    [req] = Connection().receive(client.bind(1, "cn=alice,ou=users,dc=ex", "s3cret"))
    assert isinstance(req, codec.BindRequest)
    assert (req.message_id, req.version, req.name, req.password) == (1, 3, "cn=alice,ou=users,dc=ex", b"s3cret")
    assert "s3cret" not in repr(req)


def test_anonymous_bind():
    [req] = Connection().receive(client.anonymous_bind(4))
    assert req.name == "" and req.password == b""


def test_search_decodes_filter_and_attributes():
    data = client.search(2, "ou=users,dc=ex", "(&(objectClass=user)(|(cn=al*)(!(mail=*)))(uidNumber>=2000))",
                         attributes=["cn", "mail"], size_limit=5, types_only=True)
    [req] = Connection().receive(data)
    assert isinstance(req, codec.SearchRequest)
    assert req.base == "ou=users,dc=ex" and req.scope == 2 and req.size_limit == 5 and req.types_only
    assert req.attributes == ("cn", "mail")
    assert req.filter == ("and", (("eq", "objectclass", "user"),
                                  ("or", (("sub", "cn", "al", (), None), ("not", ("present", "mail")))),
                                  ("ge", "uidnumber", "2000")))


def test_extensible_match_is_rejected_with_53():
    [req] = Connection().receive(client.search(3, "dc=ex", "(cn:dn:=alice)"))
    assert isinstance(req, codec.FilterRejected) and req.code == 53 and "extensible" in req.reason


def test_other_requests():
    conn = Connection()
    events = conn.receive(client.unbind(5) + client.abandon(6, 2) + client.extended(7, codec.WHOAMI_OID)
                          + client.compare(8, "cn=a,dc=ex", "cn", "a"))
    assert [type(e) for e in events] == [codec.UnbindRequest, codec.AbandonRequest, codec.ExtendedRequest,
                                         codec.CompareRequest]
    assert events[1].target == 2 and events[2].oid == codec.WHOAMI_OID
    assert (events[3].dn, events[3].attribute, events[3].value) == ("cn=a,dc=ex", "cn", "a")


def test_byte_by_byte_framing():
    data = client.bind(1, "cn=a,dc=ex", "pw") + client.search(2, "dc=ex")
    conn = Connection()
    events = []
    for i in range(len(data)):
        events += conn.receive(data[i:i + 1])
    assert [e.message_id for e in events] == [1, 2] and conn.buffered == 0


def test_update_requests_answered_53():
    from ldap3.operation.delete import delete_operation
    [req] = Connection().receive(client.message(9, "delRequest", delete_operation("cn=a,dc=ex")))
    assert isinstance(req, codec.UpdateRequest)
    [resp] = client.decode_all(codec.update_response(req, 53, "read-only"))
    assert resp["op"] == "delResponse" and resp["code"] == 53 and resp["id"] == 9


@pytest.mark.parametrize("data", [
    b"\x01\x02\x03",  # not a SEQUENCE
    b"\x30\x80" + b"\x00" * 10,  # indefinite length
    b"\x30\x84\x7f\xff\xff\xff",  # 2 GiB announced: refused before buffering it
    b"\x30\x03\x02\x01\x01",  # messageID only
    b"\x30\x05\x02\x01\x01\x04\x00",  # an OCTET STRING is no protocolOp
    b"\x30\x06\x02\x01\x01\x42\x01\x00",  # unbind with a body longer than its parent allows
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_garbage_is_protocol_error(data):
    conn = Connection()
    events = conn.receive(data)
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation), events
    [notice] = client.decode_all(events[0].reply)
    assert notice["id"] == 0 and notice["code"] == 2 and notice["name"] == codec.NOTICE_OF_DISCONNECTION_OID
    assert conn.closed and conn.receive(client.unbind(1)) == []


def test_truncated_waits_then_never_grows_past_limit():
    data = client.search(2, "dc=ex")
    conn = Connection()
    assert conn.receive(data[:-3]) == [] and conn.buffered == len(data) - 3
    small = Connection(max_message_bytes=64)
    [violation] = small.receive(client.search(2, "dc=ex", "(cn=" + "x" * 100 + ")"))
    assert isinstance(violation, ProtocolViolation) and "limit" in violation.reason


def test_deep_nesting_is_protocol_error():
    # (!(!(!...(cn=a)...))) 200 deep: the nesting check refuses it before pyasn1 recurses
    flt = "(cn=a)"
    for _ in range(200):
        flt = f"(!{flt})"
    body = client.search(2, "dc=ex", "(cn=a)")
    conn = Connection()
    [ok] = conn.receive(body)
    assert isinstance(ok, codec.SearchRequest)
    inner = b"\xa3\x08\x04\x02cn\x04\x02ab"  # equalityMatch
    for _ in range(200):
        inner = b"\xa2" + _len(len(inner)) + inner
    op = b"\x04\x00\x0a\x01\x02\x0a\x01\x00\x02\x01\x00\x02\x01\x00\x01\x01\x00" + inner + b"\x30\x00"
    op = b"\x63" + _len(len(op)) + op
    msg = b"\x02\x01\x02" + op
    [violation] = Connection().receive(b"\x30" + _len(len(msg)) + msg)
    assert isinstance(violation, ProtocolViolation) and "nested" in violation.reason


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_filter_nesting_limit_answers_not_crashes():
    flt = "(cn=a)"
    for _ in range(40):
        flt = f"(&{flt})"
    [event] = Connection().receive(client.search(2, "dc=ex", flt))
    # 40 ANDs: within the BER nesting limit, past the filter limit -> a per-search error, not a crash
    assert isinstance(event, (codec.FilterRejected, ProtocolViolation))


def test_responses_roundtrip():
    assert client.decode_all(codec.bind_response(1, 49, "nope")) == [
        {"id": 1, "op": "bindResponse", "code": 49, "message": "nope"}]
    [resp] = client.decode_all(codec.extended_response(3, 0, name=codec.WHOAMI_OID, value=b"dn:cn=a"))
    assert resp["value"] == b"dn:cn=a"
    [resp] = client.decode_all(codec.compare_response(4, 6))
    assert resp["code"] == 6


def _entries(n):
    return [Entry(f"cn=user{i},ou=users,dc=ex", [("cn", [f"user{i}"]), ("objectClass", ["user"]),
                                                  ("uidNumber", [str(2000 + i)])]) for i in range(n)]


def test_search_paging_with_cookies():
    conn = Connection()
    entries = _entries(250)
    calls = []

    def source():
        calls.append(1)
        return entries

    seen, cookie = [], b""
    for _ in range(10):
        [req] = conn.receive(client.search(2, "ou=users,dc=ex", "(objectClass=user)", attributes=["cn"],
                                           paged=(100, cookie)))
        out = client.decode_all(b"".join(conn.search(req, source)[0]))
        seen += [o["dn"] for o in out if o["op"] == "searchResEntry"]
        done = out[-1]
        assert done["code"] == 0
        cookie = done["cookie"]
        if not cookie:
            break
    assert len(seen) == 250 and len(set(seen)) == 250 and len(calls) == 1
    [req] = conn.receive(client.search(2, "ou=users,dc=ex", "(objectClass=user)", paged=(10, b"forged")))
    assert client.decode_all(b"".join(conn.search(req, source)[0]))[-1]["code"] == 53


def test_search_size_limit_and_types_only():
    conn = Connection()
    [req] = conn.receive(client.search(2, "ou=users,dc=ex", "(cn=user1*)", attributes=["cn"], size_limit=3,
                                       types_only=True))
    out = client.decode_all(b"".join(conn.search(req, lambda: _entries(30))[0]))
    assert [o["dn"] for o in out[:-1]] == ["cn=user1,ou=users,dc=ex", "cn=user10,ou=users,dc=ex",
                                            "cn=user11,ou=users,dc=ex"]
    assert out[0]["attributes"] == {"cn": []}
    assert out[-1]["code"] == 4


def test_search_scope_and_bad_base():
    conn = Connection()
    [req] = conn.receive(client.search(2, "CN=User3, OU=Users,DC=EX", scope=0))
    out = client.decode_all(b"".join(conn.search(req, lambda: _entries(5))[0]))
    assert [o.get("dn") for o in out] == ["cn=user3,ou=users,dc=ex", None]
    [req] = conn.receive(client.search(3, "dc=ex", scope=1))
    assert client.decode_all(b"".join(conn.search(req, lambda: _entries(5))[0])) == [
        {"id": 3, "op": "searchResDone", "code": 0, "message": ""}]
    [req] = conn.receive(client.search(4, "nonsense"))
    assert client.decode_all(b"".join(conn.search(req, lambda: _entries(5))[0]))[-1]["code"] == 34


def test_fuzz_decoder_never_crashes():
    """Bounded fuzz (fixed seed): random bytes and mutated valid messages only ever yield requests or a
    ProtocolViolation, never an exception, and the buffer stays bounded."""
    rng = random.Random(4511)
    valid = [client.bind(1, "cn=a,ou=users,dc=ex", "pw"), client.search(2, "dc=ex", "(&(cn=a*b)(uid>=1))"),
             client.search(3, "dc=ex", paged=(50, b"abc")), client.unbind(4), client.abandon(5, 1),
             client.extended(6, codec.STARTTLS_OID), client.compare(7, "cn=a,dc=ex", "cn", "a")]
    for i in range(3000):
        if i % 3 == 0:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 80)))
        else:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 4)):
                op = rng.random()
                pos = rng.randrange(len(data))
                if op < 0.5:
                    data[pos] = rng.getrandbits(8)
                elif op < 0.75:
                    del data[pos]
                else:
                    data.insert(pos, rng.getrandbits(8))
            data = bytes(data)
        conn = Connection(max_message_bytes=4096)
        events = conn.receive(data)
        assert all(isinstance(e, (codec.Request, ProtocolViolation)) for e in events)
        assert conn.buffered <= 4096 + 6
        for event in events:
            if isinstance(event, codec.SearchRequest):
                conn.search(event, lambda: _entries(3))


@pytest.mark.parametrize("message_id", [0, 1, 127, 128, 255, 256, 65535, 2**31 - 1])
def test_direct_entry_encoding_equals_pyasn1(message_id):
    attributes = [("cn", ["alice"]), ("objectClass", ["top", "person"]), ("empty", []),
                  ("long", ["x" * 300, "é" * 70]), ("member", [f"cn=user{i},ou=users,dc=ex" for i in range(200)])]
    for attrs in (attributes, [], attributes[:1]):
        assert codec.search_entry(message_id, "cn=alice,dc=ex", attrs) == \
            codec.search_entry_asn1(message_id, "cn=alice,dc=ex", attrs)


def test_direct_search_done_equals_pyasn1():
    import itertools
    for message_id, code, message, cookie, size in itertools.product(
            [0, 1, 127, 128, 255, 256, 70000, 2**31 - 1], [0, 4, 32, 53, 80], ["", "more than 5 entries match", "é" * 100],
            [None, b"", b"x" * 16, b"y" * 200], [0, 1000]):
        assert codec.search_done(message_id, code, message, paged_cookie=cookie, paged_size=size) == \
            codec.search_done_asn1(message_id, code, message, paged_cookie=cookie, paged_size=size)


def test_answers_spliced_from_the_entries_bytes_equal_pyasn1_and_decode_as_ldap3_reads_them():
    """The entries keep their PartialAttributes encoded and a search splices the requested ones into the
    envelope: byte for byte pyasn1's encoding of the same selection, which ldap3's schema decodes back to the
    entry's values, for every entry shape of a built directory and every kind of attribute request."""
    from ldap3.protocol.rfc4511 import LDAPMessage
    from pyasn1.codec.ber import decoder

    from protocols.ldap.search import SCOPE_SUBTREE, select
    from tests.protocols.ldap.test_index import LAYOUT, make_directory

    entries = make_directory(random.Random(4))
    requests = [[], ["*"], ["+"], ["*", "+"], ["1.1"], ["cn"], ["CN", "mail"], ["cn,mail", "memberOf"],
                ["objectClass", "uidNumber", "gidNumber", "homeDirectory", "memberOf", "cn"], ["nosuch"], ["member"]]
    for number, attributes in enumerate(requests):
        for types_only in (False, True):
            message_id = 128 + number
            data = client.search(message_id, LAYOUT.base, "(objectClass=*)", SCOPE_SUBTREE, attributes,
                                 types_only=types_only)
            conn = Connection()
            [request] = conn.receive(data)
            answers, code = conn.search(request, lambda: entries)
            assert code == 0 and len(answers) == len(entries) + 1
            for entry, answer in zip(entries, answers, strict=False):
                chosen = select(entry, attributes, types_only)
                assert answer == codec.search_entry_asn1(message_id, entry.dn, chosen)
                message, rest = decoder.decode(answer, asn1Spec=LDAPMessage())
                body = message["protocolOp"].getComponent()
                assert not rest and int(message["messageID"]) == message_id and str(body["object"]) == entry.dn
                assert [(str(a["type"]), [bytes(v).decode() for v in a["vals"]]) for a in body["attributes"]] == \
                    [(name, list(values)) for name, values in chosen]


def test_partial_attribute_values_read_back_what_was_encoded():
    """Short and long lengths (the reader inlines the short ones), empty, single and many values, in the middle
    of other bytes as an entry stores them."""
    for values in (["alice"], ["é" * 100, "x"], [], ["a" * 200], ["a"] * 300, ["a" * 70000]):
        for name in ("cn", "n" * 200):
            data = codec.partial_attribute(name, values)
            assert codec.partial_attribute_values(b"xx" + data + b"yy", 2, 2 + len(data)) == tuple(values)
