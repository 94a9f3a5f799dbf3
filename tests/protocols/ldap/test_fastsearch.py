"""The direct search decoder (protocols/ldap/fastsearch.py) against pyasn1's: the same request for every
generated search, and for mutated bytes either a fall back to pyasn1 (None) or pyasn1's own answer."""

import random

import pytest

from protocols.ldap import codec, fastsearch
from tests.protocols.ldap import client

FILTERS = ["(cn=alice)", "(CN=Alice)", "(objectClass=*)", "(&(objectClass=user)(cn=a*))", "(|(uid=1)(uid=2))",
           "(!(cn=bob))", "(cn=*li*e*)", "(cn=al*)", "(cn=*ce)", "(uidNumber>=2000)", "(uidNumber<=3000)",
           "(cn~=alice)", "(&(|(a=1)(b=2))(!(c=3))(d=*))", "(memberOf=cn=staff,ou=groups,dc=ex)",
           "(cn=caf\\c3\\a9)", "(cn=\\2a)", "(mail;binary=x)", "(cn:dn:=alice)", "(cn:1.2.3:=x)",
           "(&" * 20 + "(cn=x)" + ")" * 20, "(&" * 40 + "(cn=x)" + ")" * 40]


def requests():
    rng = random.Random(4)
    for i, flt in enumerate(FILTERS):
        for scope in (0, 1, 2):
            attrs = rng.choice([[], ["cn", "mail"], ["*", "+"], ["1.1"], ["cn,mail"]])
            controls = rng.choice([None, (100, b""), (50, b"cookie")])
            yield client.search(i * 3 + scope + 1, "ou=users,dc=ex", flt, scope, attrs, size_limit=rng.choice([0, 5]),
                                types_only=rng.choice([False, True]), paged=controls)


def test_fast_decoder_equals_pyasn1_on_generated_searches():
    handled = 0
    for data in requests():
        try:
            slow = codec.decode_message_asn1(data)
        except codec.LDAPProtocolError:  # the filter nested past the limit
            slow = None
        fast = fastsearch.decode(data, codec.MAX_ATTRIBUTES, codec.MAX_CONTROLS)
        if fast is None:  # extensible match (FilterRejected) and the filter nested past the limit only
            assert not isinstance(slow, codec.SearchRequest)
            continue
        handled += 1
        assert codec.decode_message(data) == slow
    assert handled >= 50


@pytest.mark.parametrize("seed", range(4))
def test_mutated_bytes_fall_back_or_agree(seed):
    rng = random.Random(seed)
    samples = list(requests())
    for _ in range(1500):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data)
        fast = fastsearch.decode(data, codec.MAX_ATTRIBUTES, codec.MAX_CONTROLS)
        if fast is None:
            continue
        try:
            slow = codec.decode_message_asn1(data)
        except codec.LDAPProtocolError:
            slow = None
        assert slow is not None and codec.decode_message(data) == slow, data.hex()
