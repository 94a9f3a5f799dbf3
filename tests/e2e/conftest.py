"""Fixtures for the end-to-end suite: real proxies (configs/ rendered per test run), the echo upstream,
and a record of facts observed on the wire, printed at the end of the run and written to
test-artifacts/e2e/observations.json (what each proxy forwards is something the outpost must know).

Tests here need real binaries; ``tests.conftest.need`` skips them locally and fails them under CI=true.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support.proxies import Proxy, start_proxy
from tests.e2e.support.stack import Stack, start_stack
from tests.e2e.support.threaded import ThreadedApp
from tests.e2e.support.upstream import start_upstream

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "e2e" / "observations.json"
APP_HOST = "app.test"
OBSERVATIONS = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def upstream() -> Iterator[ThreadedApp]:
    server = start_upstream()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy_factory(tmp_path_factory) -> Iterator:
    """``proxy_factory(kind, outpost=..., upstream=..., app_host=..., port=None)`` -> a running Proxy, stopped at the
    end of the session at the latest (stop it earlier yourself if you like)."""
    started: list[Proxy] = []

    def factory(kind: str, *, outpost: str, upstream: str, app_host: str = APP_HOST,
                port: int | None = None) -> Proxy:
        proxy = start_proxy(kind, tmp_path_factory.mktemp(kind), app_host=app_host, outpost=outpost,
                            upstream=upstream, port=port)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="module")
def stack_factory(tmp_path_factory) -> Iterator:
    """``stack_factory(store="memory"|"redis", standalone=False, env=None)`` -> a started Stack (the real core,
    and the embedded or a standalone outpost), stopped at the end of the module. Start one per module: the
    core takes a few seconds to start. See tests/e2e/support/stack.py and /work/notes/e2e-stack.md."""
    started: list[Stack] = []

    def factory(*, store: str = "memory", standalone: bool = False, env: dict | None = None,
                browser_host: str = "localhost") -> Stack:
        stack = start_stack(tmp_path_factory.mktemp(f"stack-{store}"), store=store, standalone=standalone,
                            env=env, browser_host=browser_host)
        started.append(stack)
        return stack

    yield factory
    for stack in started:
        stack.stop()


@pytest.fixture(scope="module")
def stack(stack_factory) -> Stack:
    """The default stack: ``ak server`` with its embedded outpost and the in-memory session store
    (GATEHOUSE_E2E_STORE=redis runs the same journeys on the Redis store). Override it in a module (same
    name) for another store or a standalone outpost."""
    return stack_factory(store=os.environ.get("GATEHOUSE_E2E_STORE", "memory"))


@pytest.fixture
def observe(request):
    """``observe(kind, topic, value)``: record a fact seen on the wire for the end-of-run summary."""
    store = request.config.stash.setdefault(OBSERVATIONS, {})

    def record(kind: str, topic: str, value) -> None:
        store.setdefault(topic, {})[kind] = value

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    store = config.stash.get(OBSERVATIONS, None)
    if not store:
        return
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(store, indent=2, sort_keys=True))
    terminalreporter.section("e2e: observed proxy behaviour")
    for topic in sorted(store):
        terminalreporter.write_line(f"{topic}:")
        for kind in sorted(store[topic]):
            terminalreporter.write_line(f"  {kind:8} {json.dumps(store[topic][kind])}")
    terminalreporter.write_line(f"(also in {ARTIFACT.relative_to(ROOT)})")
