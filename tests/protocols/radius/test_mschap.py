"""protocols/radius/mschap.py against the RFCs' own vectors: MD4 (RFC 1320 §A.5), MS-CHAP (RFC 2433 §B),
MS-CHAPv2 (RFC 2759 §9.2), MPPE keys (RFC 3079 §3.5.3), and CHAP (RFC 1994)."""

import hashlib

from protocols.radius import mschap

AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")


def test_md4_rfc1320():
    assert mschap.md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert mschap.md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"
    assert mschap.md4(b"message digest").hex() == "d9130a8164549fe818874806e1c7014b"
    assert mschap.md4(b"1234567890" * 8).hex() == "e33b4ddc9c38f2199c3e7b164fcc0536"


def test_mschapv2_rfc2759():
    assert mschap.nt_password_hash("clientPass").hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    assert mschap.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, "User").hex().upper() == "D02E4386BCE91226"
    assert mschap.generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, "User", "clientPass") == NT_RESPONSE
    assert mschap.authenticator_response("clientPass", NT_RESPONSE, PEER_CHALLENGE, AUTH_CHALLENGE, "User") == \
        "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    assert mschap.verify_mschapv2("clientPass", AUTH_CHALLENGE, PEER_CHALLENGE, "User", NT_RESPONSE)
    assert not mschap.verify_mschapv2("clientPasS", AUTH_CHALLENGE, PEER_CHALLENGE, "User", NT_RESPONSE)
    assert mschap.verify_mschapv2("clientPass", AUTH_CHALLENGE, PEER_CHALLENGE, "DOMAIN\\User", NT_RESPONSE)


def test_mppe_keys_rfc3079():
    assert mschap.master_key("clientPass", NT_RESPONSE).hex().upper() == "FDECE3717A8C838CB388E527AE3CDD31"
    send, recv = mschap.mppe_keys("clientPass", NT_RESPONSE)
    assert send.hex().upper() == "8B7CDC149B993A1BA118CB153F56DCCB"  # RFC 3079 §3.5.3 SendStartKey128
    assert len(recv) == 16 and recv != send


def test_chap():
    challenge, secret = b"0123456789abcdef", b"network-password"
    response = hashlib.md5(bytes([7]) + secret + challenge).digest()  # noqa: S324 - RFC 1994
    assert mschap.chap_valid(7, secret, challenge, response)
    assert not mschap.chap_valid(8, secret, challenge, response)
    assert not mschap.chap_valid(7, b"other", challenge, response)


def test_mschap_v1_rfc2433():
    challenge = bytes.fromhex("102DB5DF085D3041")
    assert mschap.nt_password_hash("MyPw").hex().upper() == "FC156AF7EDCD6C0EDDE3337D427F4EAC"
    nt = bytes.fromhex("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")
    assert mschap.challenge_response(challenge, mschap.nt_password_hash("MyPw")) == nt
    assert mschap.verify_mschap("MyPw", challenge, nt) and not mschap.verify_mschap("MyPW", challenge, nt)
