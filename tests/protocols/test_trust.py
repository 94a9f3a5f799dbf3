"""protocols/trust.py: one place for the trusted proxy networks, used by the core and the outposts (the walks
themselves are tested in tests/protocols/test_forward.py (client_chain), tests/server/test_units.py
(metrics_allowed) and the live threat tests)."""

import ipaddress

from protocols import trust

NETS = trust.default_networks()


def test_both_configurations_default_to_the_same_networks():
    from core.config import load as load_core
    from outpost.config import OutpostConfig
    from outpost.config import load as load_outpost

    outpost = load_outpost({"AUTHENTIK_HOST": "https://auth.example.com", "AUTHENTIK_TOKEN": "t"})
    assert outpost.trusted_proxy_cidrs == NETS == OutpostConfig("https://a/", "t").trusted_proxy_cidrs
    assert load_core({"AUTHENTIK_SECRET_KEY": "k" * 50}).trusted_proxy_cidrs == NETS
    assert [str(n) for n in NETS] == list(trust.DEFAULT_TRUSTED_PROXY_CIDRS)


def test_parse_cidrs_names_the_variable_and_every_bad_item():
    networks, problems = trust.parse_cidrs("10.0.0.0/8, bogus,, 2001:db8::/32,nope", "AUTHENTIK_X")
    assert [str(n) for n in networks] == ["10.0.0.0/8", "2001:db8::/32"]
    assert problems == [f"AUTHENTIK_X: {item!r} is not a network; expected CIDRs like 10.0.0.0/8,::1/128"
                        for item in ("bogus", "nope")]
    assert trust.parse_cidrs("", "AUTHENTIK_X") == ((), [])  # set but empty: trust no one


def test_resolve_the_cores_walk():
    assert trust.resolve("10.0.0.1", "203.0.113.9, 10.0.0.2", NETS) == trust.ClientAddress(
        "203.0.113.9", True, "10.0.0.2")
    assert trust.resolve("203.0.113.1", "198.51.100.1", NETS) == trust.ClientAddress("203.0.113.1", True)
    assert trust.resolve("10.0.0.1", "x, 10.0.0.2", NETS) == trust.ClientAddress("10.0.0.1", False)
    assert trust.resolve("garbage", None, NETS) == trust.ClientAddress("255.255.255.255", False)


def test_forwarded_scheme_only_from_a_trusted_peer():
    assert trust.forwarded_scheme("http", "HTTPS", "10.1.2.3", NETS) == "https"
    assert trust.forwarded_scheme("http", "https", "203.0.113.5", NETS) == "http"
    assert trust.forwarded_scheme("http", "gopher", "10.1.2.3", NETS) == "http"
    assert trust.forwarded_scheme("http", "https", "10.1.2.3", ()) == "http"
    assert trust.client_inside("10.0.0.1", None, [ipaddress.ip_network("10.0.0.0/8")])
