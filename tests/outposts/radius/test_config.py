"""The RADIUS listeners in the outpost configuration (outpost/config.py)."""

import pytest

from outpost.config import Listen, OutpostConfigError, load

BASE = {"AUTHENTIK_HOST": "https://auth.example.com", "AUTHENTIK_TOKEN": "t0ken"}


def test_defaults_are_1812_and_1813():
    config = load(BASE)
    assert config.listen_radius == Listen("0.0.0.0", 1812)
    assert config.listen_radius_accounting == Listen("0.0.0.0", 1813)


def test_ipv6_and_bad_values():
    config = load({**BASE, "AUTHENTIK_LISTEN__RADIUS": "[::]:11812",
                   "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING": "127.0.0.1:11813"})
    assert config.listen_radius == Listen("::", 11812) and config.listen_radius_accounting.port == 11813
    with pytest.raises(OutpostConfigError, match="AUTHENTIK_LISTEN__RADIUS_ACCOUNTING='1813'"):
        load({**BASE, "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING": "1813"})
