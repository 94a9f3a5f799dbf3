"""protocols/version.py: one version, pyproject.toml's, in every place an outpost reports it."""

import tomllib

from outpost.core_link import USER_AGENT
from outpost.proxy.forward_auth import ProxyOutpost
from outpost.proxy.session import MemoryStore
from protocols.version import VERSION
from tests.support.server import REPO


def test_one_version_everywhere():
    with open(REPO / "pyproject.toml", "rb") as fh:
        declared = tomllib.load(fh)["project"]["version"]
    assert VERSION == declared
    assert USER_AGENT == f"goauthentik.io/outpost/{declared}"
    assert ProxyOutpost(store=MemoryStore()).version == declared  # X-authentik-meta-version
