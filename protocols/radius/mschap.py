"""CHAP (RFC 1994, RFC 2865 §2.2), MS-CHAP (RFC 2433) and MS-CHAPv2 (RFC 2759) with MPPE keys (RFC 3079),
sans-IO.

Hand-written where no library is at hand: MD4 (hashlib's OpenSSL 3 build has no MD4; the NT password hash
needs it) and the 7-to-8-octet DES key spreading. DES itself is the ``cryptography`` package's (its
"decrepit" TripleDES with K1 = K2 = K3 is single DES). Comparisons use hmac.compare_digest.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

MAGIC1 = b"Magic server to client signing constant"
MAGIC2 = b"Pad to make it do more than one iteration"
# RFC 3079 §3.4
MASTER_MAGIC = b"This is the MPPE Master Key"
SEND_MAGIC_SERVER = (b"On the client side, this is the send key; on the server side, it is the receive key.")
RECV_MAGIC_SERVER = (b"On the client side, this is the receive key; on the server side, it is the send key.")
SHS_PAD1 = b"\x00" * 40
SHS_PAD2 = b"\xf2" * 40


def chap_valid(ident: int, secret: bytes, challenge: bytes, response: bytes) -> bool:
    """RFC 1994 §4.1: response == MD5(Identifier + secret + Challenge)."""
    expected = hashlib.md5(bytes([ident]) + secret + challenge).digest()  # noqa: S324 - the RFC's
    return hmac.compare_digest(expected, response)


# --- MD4 (RFC 1320), for the NT password hash only ------------------------------------------------------------

def _rotl(x: int, n: int) -> int:
    x &= 0xFFFFFFFF
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def md4(data: bytes) -> bytes:
    message = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for offset in range(0, len(message), 64):
        x = struct.unpack("<16I", message[offset:offset + 64])
        aa, bb, cc, dd = a, b, c, d
        f = lambda x_, y, z: (x_ & y) | (~x_ & z)  # noqa: E731
        g = lambda x_, y, z: (x_ & y) | (x_ & z) | (y & z)  # noqa: E731
        h = lambda x_, y, z: x_ ^ y ^ z  # noqa: E731
        for i in (0, 4, 8, 12):
            a = _rotl(a + f(b, c, d) + x[i], 3)
            d = _rotl(d + f(a, b, c) + x[i + 1], 7)
            c = _rotl(c + f(d, a, b) + x[i + 2], 11)
            b = _rotl(b + f(c, d, a) + x[i + 3], 19)
        for i in (0, 1, 2, 3):
            a = _rotl(a + g(b, c, d) + x[i] + 0x5A827999, 3)
            d = _rotl(d + g(a, b, c) + x[i + 4] + 0x5A827999, 5)
            c = _rotl(c + g(d, a, b) + x[i + 8] + 0x5A827999, 9)
            b = _rotl(b + g(c, d, a) + x[i + 12] + 0x5A827999, 13)
        for i in (0, 2, 1, 3):
            a = _rotl(a + h(b, c, d) + x[i] + 0x6ED9EBA1, 3)
            d = _rotl(d + h(a, b, c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + h(d, a, b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + h(c, d, a) + x[i + 12] + 0x6ED9EBA1, 15)
        a, b, c, d = (a + aa) & 0xFFFFFFFF, (b + bb) & 0xFFFFFFFF, (c + cc) & 0xFFFFFFFF, (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)


# --- RFC 2759 §8 -------------------------------------------------------------------------------------------

def nt_password_hash(password: str) -> bytes:
    return md4(password.encode("utf-16-le"))


def _des_key(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 octets (the low bit of each is parity, ignored by DES)."""
    bits = int.from_bytes(key7, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def _des(key7: bytes, block: bytes) -> bytes:
    key = _des_key(key7)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # noqa: S305 - MS-CHAP is DES-ECB (K1=K2=K3)
    return encryptor.update(block) + encryptor.finalize()


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: str) -> bytes:
    """The user name without any domain (RFC 2759 §8.2: "the username ... without the domain")."""
    name = username.rsplit("\\", 1)[-1].encode()
    return hashlib.sha1(peer_challenge + authenticator_challenge + name).digest()[:8]  # noqa: S324 - the RFC's


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    key = password_hash + b"\x00" * 5
    return _des(key[0:7], challenge) + _des(key[7:14], challenge) + _des(key[14:21], challenge)


def generate_nt_response(authenticator_challenge: bytes, peer_challenge: bytes, username: str,
                         password: str) -> bytes:
    return challenge_response(challenge_hash(peer_challenge, authenticator_challenge, username),
                              nt_password_hash(password))


def authenticator_response(password: str, nt_response: bytes, peer_challenge: bytes,
                           authenticator_challenge: bytes, username: str) -> str:
    """RFC 2759 §8.7: "S=" and 40 upper-case hex digits."""
    hash_hash = md4(nt_password_hash(password))
    digest = hashlib.sha1(hash_hash + nt_response + MAGIC1).digest()  # noqa: S324
    challenge = challenge_hash(peer_challenge, authenticator_challenge, username)
    digest = hashlib.sha1(digest + challenge + MAGIC2).digest()  # noqa: S324
    return "S=" + digest.hex().upper()


def verify_mschap(password: str, challenge: bytes, nt_response: bytes) -> bool:
    """MS-CHAP (v1, RFC 2433 §A.5): the NT-Response is ChallengeResponse(8-octet challenge, NT hash)."""
    return hmac.compare_digest(challenge_response(challenge, nt_password_hash(password)), nt_response)


def verify_mschapv2(password: str, authenticator_challenge: bytes, peer_challenge: bytes, username: str,
                    nt_response: bytes) -> bool:
    return hmac.compare_digest(generate_nt_response(authenticator_challenge, peer_challenge, username, password),
                               nt_response)


# --- RFC 3079 §3.4: MPPE keys (128 bit) -------------------------------------------------------------------

def master_key(password: str, nt_response: bytes) -> bytes:
    hash_hash = md4(nt_password_hash(password))
    return hashlib.sha1(hash_hash + nt_response + MASTER_MAGIC).digest()[:16]  # noqa: S324


def _asymmetric_start_key(master: bytes, magic: bytes) -> bytes:
    return hashlib.sha1(master + SHS_PAD1 + magic + SHS_PAD2).digest()[:16]  # noqa: S324


def mppe_keys(password: str, nt_response: bytes) -> tuple[bytes, bytes]:
    """(MS-MPPE-Send-Key, MS-MPPE-Recv-Key) as the RADIUS server sends them to the NAS (RFC 2548 §2.4.2,
    §2.4.3: the NAS's send key is the server side's send key)."""
    master = master_key(password, nt_response)
    return _asymmetric_start_key(master, RECV_MAGIC_SERVER), _asymmetric_start_key(master, SEND_MAGIC_SERVER)
