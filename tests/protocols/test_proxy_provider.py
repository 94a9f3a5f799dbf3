"""protocols/proxy_provider.py: the proxy provider contract both ends import."""

from collections.abc import Mapping

import pytest

from outpost.proxy.apps import AppConfig
from protocols.proxy_provider import MODES, OUTPOST_CONFIG_FIELDS, Access, AccessError, callback_urls
from tests.outpost.proxy.conftest import provider_json


class Recording(Mapping):
    """A provider whose reads are recorded."""

    def __init__(self, data: dict):
        self.data, self.read = data, set()

    def __getitem__(self, key):
        self.read.add(key)
        return self.data[key]

    def get(self, key, default=None):
        self.read.add(key)
        return self.data.get(key, default)

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_the_outpost_reads_only_the_contracts_fields():
    provider = Recording(provider_json(access={"default": "allow"}))
    AppConfig.from_json(provider, outpost_name="t")
    assert provider.read <= set(OUTPOST_CONFIG_FIELDS), provider.read - set(OUTPOST_CONFIG_FIELDS)


def test_the_core_sends_the_contracts_fields_and_modes():
    from core.providers.proxy.api import ProxyOutpostConfigSerializer
    from core.providers.proxy.models import ProxyMode

    assert tuple(ProxyOutpostConfigSerializer.Meta.fields) == OUTPOST_CONFIG_FIELDS
    assert tuple(ProxyMode.values) == MODES


def test_callback_urls_and_the_outposts_redirect_uri():
    assert callback_urls("https://app.example.com/") == (
        "https://app.example.com/outpost.goauthentik.io/callback?X-authentik-auth-callback=true",
        "https://app.example.com?X-authentik-auth-callback=true")
    app = AppConfig.from_json(provider_json(external_host="https://app.example.com"), outpost_name="t")
    assert app.redirect_uri == callback_urls("https://app.example.com")[0]


def test_access_round_trip():
    sent = Access(default_allow=False, allow_subjects=frozenset({"b", "a"})).to_json()
    assert sent == {"default": "deny", "allow_subjects": ["a", "b"], "deny_subjects": []}
    assert Access.from_json(sent) == Access(False, frozenset({"a", "b"}))
    with pytest.raises(AccessError, match="unknown keys"):
        Access.from_json({**sent, "extra": 1})
