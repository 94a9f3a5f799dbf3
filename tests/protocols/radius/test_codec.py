"""protocols/radius/codec.py without sockets: RFC 2865 §7.1 vectors, BlastRADIUS checks, strict lengths and a
bounded fuzz loop (fixed seed) in which nothing but DecodeError may escape."""

from __future__ import annotations

import random
import struct

import pytest
from pyrad.packet import AcctPacket, AuthPacket

from protocols.radius.codec import (
    MAX_PACKET,
    Code,
    DecodeError,
    decode_request,
    dictionary,
    encode_reply,
    encode_request,
    raw_attributes,
    response_authenticator,
    walk,
)

# RFC 2865 §7.1: nemo/arctangent from 192.168.1.16 port 3, secret xyzzy5461
RFC_SECRET = b"xyzzy5461"
RFC_REQUEST = bytes.fromhex(
    "01000038" "0f403f9473978057bd83d5cb98f4227a" "01066e656d6f" "02120dbe708d93d413ce3196e43f782a0aee"
    "0406c0a80110" "050600000003")
RFC_ACCEPT = bytes.fromhex(
    "02000026" "86fe220e7624ba2a1005f6bf9b55e0b2" "060600000001" "0f0600000000" "0e06c0a80103")
SECRET = b"s3cret-shared"
AUTH = bytes(range(16))


def access_request(password="pw", *, secret=SECRET, ma=True, extra=(), identifier=7, authenticator=AUTH):
    return encode_request(Code.ACCESS_REQUEST, secret, identifier, authenticator,
                          [("User-Name", "alice"), ("NAS-Identifier", "ap-1"), *extra],
                          password=password, message_authenticator=ma)


def client_view(request: bytes, reply: bytes, secret=SECRET) -> AuthPacket:
    """What a pyrad client does with the reply: verify (Message-Authenticator enforced) and decode."""
    sent = AuthPacket(packet=request, secret=secret, dict=dictionary())
    got = AuthPacket(packet=reply, secret=secret, dict=dictionary())
    assert sent.VerifyReply(got, reply, enforce_ma=True)
    return got


def test_rfc2865_example_decodes_and_decrypts():
    request = decode_request(RFC_REQUEST, RFC_SECRET, require_message_authenticator=False)
    assert request.code == Code.ACCESS_REQUEST and request.identifier == 0
    assert request.user_name == "nemo"
    assert request.password == "arctangent"
    assert request.get("NAS-IP-Address") == "192.168.1.16" and request.get("NAS-Port") == 3
    assert "arctangent" not in repr(request)


def test_rfc2865_example_response_authenticator():
    assert response_authenticator(RFC_ACCEPT, RFC_REQUEST[4:20], RFC_SECRET) == RFC_ACCEPT[4:20]


def test_rfc_example_needs_message_authenticator_by_default():
    with pytest.raises(DecodeError) as err:
        decode_request(RFC_REQUEST, RFC_SECRET)
    assert err.value.reason == "message_authenticator_missing"


def test_round_trip_with_message_authenticator():
    data = access_request("correct horse")
    request = decode_request(data, SECRET)
    assert request.message_authenticator and request.password == "correct horse"
    assert request.get("NAS-Identifier") == "ap-1"
    reply = encode_reply(request, Code.ACCESS_ACCEPT, SECRET, [("Reply-Message", "welcome")])
    got = client_view(data, reply)
    assert got.code == Code.ACCESS_ACCEPT and got["Reply-Message"] == ["welcome"]
    assert raw_attributes(reply)[80][0] != b"\x00" * 16


@pytest.mark.parametrize("code", [Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE])
def test_reject_and_challenge_carry_message_authenticator(code):
    data = access_request()
    reply = encode_reply(decode_request(data, SECRET), code, SECRET)
    assert client_view(data, reply).code == code
    assert 80 in raw_attributes(reply)


def test_long_password_and_utf8():
    password = "pässwörd;123456-" * 7  # 119 characters, more than 112 octets
    password = password[: 128 - 10]
    assert decode_request(access_request(password), SECRET).password == password


def test_wrong_secret_fails_message_authenticator():
    with pytest.raises(DecodeError) as err:
        decode_request(access_request(), b"other secret")
    assert err.value.reason == "message_authenticator"


def test_tampered_packet_fails_message_authenticator():
    data = bytearray(access_request())
    data[-1] ^= 1  # inside NAS-Identifier or the password
    with pytest.raises(DecodeError):
        decode_request(bytes(data), SECRET)


def test_opt_out_accepts_missing_but_still_verifies_present():
    request = decode_request(access_request(ma=False), SECRET, require_message_authenticator=False)
    assert not request.message_authenticator and request.password == "pw"
    with pytest.raises(DecodeError):
        decode_request(access_request(), b"bad", require_message_authenticator=False)


def test_eap_message_always_needs_message_authenticator():
    data = access_request(ma=False, extra=[("EAP-Message", b"\x02\x01\x00\x05\x01")])
    with pytest.raises(DecodeError):
        decode_request(data, SECRET, require_message_authenticator=False)


def test_two_message_authenticators_dropped():
    data = access_request()
    extra = bytes([80, 18]) + b"\x00" * 16
    doubled = data[:2] + struct.pack("!H", len(data) + 18) + data[4:] + extra
    with pytest.raises(DecodeError) as err:
        decode_request(doubled, SECRET)
    assert err.value.reason == "message_authenticator"


def test_status_server_needs_and_gets_message_authenticator():
    data = encode_request(Code.STATUS_SERVER, SECRET, 9, AUTH, [("NAS-Identifier", "probe")])
    request = decode_request(data, SECRET, require_message_authenticator=False)
    reply = encode_reply(request, Code.ACCESS_ACCEPT, SECRET)
    assert client_view(data, reply).code == Code.ACCESS_ACCEPT
    acct = encode_reply(request, Code.ACCOUNTING_RESPONSE, SECRET)
    sent = AuthPacket(packet=data, secret=SECRET, dict=dictionary())
    assert sent.VerifyReply(AcctPacket(packet=acct, secret=SECRET, dict=dictionary()), acct, enforce_ma=True)
    bare = encode_request(Code.STATUS_SERVER, SECRET, 9, AUTH, message_authenticator=False)
    # pyrad always signs Status-Server; strip it by hand
    bare_ma_less = bare[:2] + struct.pack("!H", 20) + bare[4:20]
    with pytest.raises(DecodeError):
        decode_request(bare_ma_less, SECRET, require_message_authenticator=False)


def test_accounting_request_verified_and_answered():
    data = encode_request(Code.ACCOUNTING_REQUEST, SECRET, 3, AUTH,
                          [("User-Name", "alice"), ("Acct-Status-Type", "Start"), ("Acct-Session-Id", "s1")])
    request = decode_request(data, SECRET)
    assert request.get("Acct-Status-Type") == "Start" and request.get("Acct-Session-Id") == "s1"
    reply = encode_reply(request, Code.ACCOUNTING_RESPONSE, SECRET)
    sent = AcctPacket(packet=data, secret=SECRET, dict=dictionary())
    assert sent.VerifyReply(AcctPacket(packet=reply, secret=SECRET, dict=dictionary()), reply)
    with pytest.raises(DecodeError) as err:
        decode_request(data, b"wrong")
    assert err.value.reason == "authenticator"


def test_proxy_state_copied_in_order():
    data = access_request(extra=[("Proxy-State", b"one"), ("Proxy-State", b"two")])
    request = decode_request(data, SECRET)
    assert request.proxy_state == (b"one", b"two")
    reply = encode_reply(request, Code.ACCESS_REJECT, SECRET)
    assert raw_attributes(reply)[33] == [b"one", b"two"]
    client_view(data, reply)


def test_reply_code_must_answer_request():
    request = decode_request(access_request(), SECRET)
    with pytest.raises(ValueError, match="does not answer"):
        encode_reply(request, Code.ACCOUNTING_RESPONSE, SECRET)
    with pytest.raises(ValueError, match="not in the RADIUS dictionary"):
        encode_reply(request, Code.ACCESS_ACCEPT, SECRET, [("No-Such-Attribute", "x")])


def test_vlan_reply_attributes_tagged():
    request = decode_request(access_request(), SECRET)
    reply = encode_reply(request, Code.ACCESS_ACCEPT, SECRET, [
        ("Tunnel-Type:1", "VLAN"), ("Tunnel-Medium-Type:1", "IEEE-802"), ("Tunnel-Private-Group-Id:1", "42")])
    raw = raw_attributes(reply)
    assert raw[64] == [b"\x01\x00\x00\x0d"] and raw[65] == [b"\x01\x00\x00\x06"] and raw[81] == [b"\x0142"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "length"),
    (b"\x01\x00\x00\x14" + b"\x00" * 15, "length"),  # 19 octets
    (b"\x01\x00\x00\x13" + b"\x00" * 16, "length"),  # Length 19
    (b"\x01\x00\x00\x20" + b"\x00" * 16, "length"),  # Length beyond the datagram
    (b"\x01\x00\x10\x01" + b"\x00" * 4093, "length"),  # Length 4097
    (b"\x01\x00\x00\x14" + b"\x00" * 4093, "length"),  # datagram > 4096
    (b"\x01\x00\x00\x15" + b"\x00" * 16 + b"\x01", "attribute"),  # one octet of attribute header
    (b"\x01\x00\x00\x16" + b"\x00" * 16 + b"\x01\x01", "attribute"),  # attribute length 1
    (b"\x01\x00\x00\x18" + b"\x00" * 16 + b"\x01\x08ab", "attribute"),  # attribute runs past Length
    (b"\x01\x00\x00\x16" + b"\x00" * 16 + b"\x01\x00", "attribute"),  # attribute length 0
])
def test_malformed_packets(data, reason):
    with pytest.raises(DecodeError) as err:
        decode_request(data, SECRET, require_message_authenticator=False)
    assert err.value.reason == reason


def test_padding_after_length_ignored():
    data = access_request()
    assert decode_request(data + b"\x00" * 10, SECRET).password == "pw"


def test_unknown_code_dropped():
    data = bytes([2]) + access_request()[1:]
    with pytest.raises(DecodeError) as err:
        decode_request(data, SECRET)
    assert err.value.reason == "code"


@pytest.mark.parametrize("size", [0, 8, 17, 144])
def test_bad_user_password_length(size):
    data = access_request(ma=False)
    header, attrs = walk(data)
    body = b"".join(bytes([k, len(v) + 2]) + v for k, v in attrs if k != 2) + bytes([2, size + 2]) + b"x" * size
    packet = bytes([1, 7]) + struct.pack("!H", 20 + len(body)) + AUTH + body
    with pytest.raises(DecodeError) as err:
        decode_request(packet, SECRET, require_message_authenticator=False)
    assert err.value.reason == "password"


def test_max_size_packet_ok():
    data = access_request(ma=False)
    filler = bytes([26, 255]) + b"\x00\x00\x01\x37" + bytes([200, 249]) + b"z" * 247
    body = data[20:] + filler * 15
    packet = bytes([1, 7]) + struct.pack("!H", 20 + len(body)) + AUTH + body
    assert len(packet) <= MAX_PACKET
    decode_request(packet, SECRET, require_message_authenticator=False)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.4 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice < 0.6:
            out = out[: rng.randrange(len(out) + 1)]
        elif choice < 0.8:
            at = rng.randrange(len(out) + 1)
            out[at:at] = rng.randbytes(rng.randint(1, 40))
        elif len(out) >= 4:  # keep the Length field consistent so the attribute walk is exercised
            struct.pack_into("!H", out, 2, min(len(out), 0xFFFF))
    return bytes(out)


def test_fuzz_only_decode_error():
    rng = random.Random(20261129)
    seeds = [
        access_request("pw", extra=[("Proxy-State", b"p"), ("Calling-Station-Id", "aa-bb")]),
        access_request(ma=False, extra=[("Vendor-Specific", b"\x00\x00\x01\x37\x01\x05abc"),
                                        ("Tunnel-Type:1", "VLAN"), ("NAS-IP-Address", "10.0.0.1")]),
        encode_request(Code.STATUS_SERVER, SECRET, 1, AUTH),
        encode_request(Code.ACCOUNTING_REQUEST, SECRET, 2, AUTH, [("Acct-Status-Type", "Stop"),
                                                                 ("Acct-Input-Octets", 10),
                                                                 ("Event-Timestamp", 1700000000)]),
        RFC_REQUEST,
    ]
    decoded = 0
    for i in range(4000):
        if i % 4 == 0:
            data = bytes([rng.choice((1, 4, 12, rng.randrange(256))), rng.randrange(256)])
            body = rng.randbytes(rng.randint(0, 120))
            data += struct.pack("!H", 20 + len(body) if rng.random() < 0.8 else rng.randrange(65536))
            data += rng.randbytes(16) + body
        else:
            data = _mutate(rng, rng.choice(seeds))
        for require in (True, False):
            try:
                decode_request(data, SECRET, require_message_authenticator=require)
                decoded += 1
            except DecodeError:
                pass
    assert decoded > 0  # some mutations (e.g. of the opted-out packet's attributes) still decode
