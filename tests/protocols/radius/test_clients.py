"""protocols/radius/clients.py: longest prefix over all providers, IPv4 and IPv6, unknown clients None."""

from protocols.radius.clients import build_table


def provider(pk, networks, secret=None, **extra):
    return {"pk": pk, "name": f"p{pk}", "client_networks": networks, "shared_secret": secret or f"secret-{pk}",
            **extra}


def test_longest_prefix_across_providers():
    table = build_table([
        provider(1, "0.0.0.0/0, ::/0"),
        provider(2, "10.0.0.0/8"),
        provider(3, "10.1.0.0/16, 2001:db8::/32"),
        provider(4, "10.1.2.3/32"),
    ])
    assert table.lookup("10.1.2.3").provider_pk == 4
    assert table.lookup("10.1.2.4").provider_pk == 3
    assert table.lookup("10.2.0.1").provider_pk == 2
    assert table.lookup("192.0.2.1").provider_pk == 1
    assert table.lookup("2001:db8::1").provider_pk == 3
    assert table.lookup("2001:db9::1").provider_pk == 1
    assert table.lookup("10.1.2.3").secret == b"secret-4"


def test_order_of_providers_does_not_matter():
    a = build_table([provider(1, "10.0.0.0/8"), provider(2, "10.0.0.0/24")])
    b = build_table([provider(2, "10.0.0.0/24"), provider(1, "10.0.0.0/8")])
    assert a.lookup("10.0.0.5").provider_pk == b.lookup("10.0.0.5").provider_pk == 2


def test_unknown_client_and_bad_addresses():
    table = build_table([provider(1, "10.0.0.0/8")])
    assert table.lookup("192.168.1.1") is None
    assert table.lookup("::1") is None
    assert table.lookup("not an ip") is None
    assert build_table([]).lookup("127.0.0.1") is None


def test_ipv4_mapped_and_scoped_addresses():
    table = build_table([provider(1, "127.0.0.0/8"), provider(2, "fe80::/10")])
    assert table.lookup("::ffff:127.0.0.1").provider_pk == 1
    assert table.lookup("fe80::1%eth0").provider_pk == 2


def test_problems_reported_and_rest_served():
    table = build_table([provider(1, "10.0.0.0/8, nonsense, 10.0.0.300/32"), provider(2, "10.0.0.0/8"),
                         {"pk": 3, "name": "empty", "client_networks": "0.0.0.0/0", "shared_secret": ""}])
    assert table.lookup("10.9.9.9").provider_pk == 1
    assert table.lookup("8.8.8.8") is None
    text = "\n".join(table.problems)
    assert "nonsense" in text and "10.0.0.300/32" in text and "both list 10.0.0.0/8" in text and "'empty'" in text


def test_flags_and_secret_not_in_repr():
    table = build_table([provider(1, "10.0.0.0/8", secret="hunter2", require_message_authenticator=False,
                                  mfa_support=False)])
    client = table.lookup("10.0.0.1")
    assert client.require_message_authenticator is False and client.mfa_support is False
    assert "hunter2" not in repr(table)
    assert build_table([provider(1, "10.0.0.0/8")]).lookup("10.0.0.1").require_message_authenticator is True
