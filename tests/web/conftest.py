"""The flow fixtures the web tests share with tests/flows (the default blueprints' flows)."""

from tests.flows.conftest import default_flows  # noqa: F401 - a fixture

