"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright; a failing test saves a screenshot
to test-artifacts/screenshots/<test>.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import need
from tests.support.api import Api
from tests.support.server import start_core

ADMIN_PASSWORD = "Correct-Horse-battery-9!"  # noqa: S105 - a test password
BOOTSTRAP_TOKEN = "browser-bootstrap-token-" + "x" * 40  # noqa: S105 - a test token

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("GATEHOUSE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, which this closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in this thread while it
# is open, and every later async test (pytest-asyncio) would then fail with "Runner.run() cannot be
# called from a running event loop".
@pytest.fixture(scope="module")
def chromium(request):
    """Chromium for the module; a module's ``CHROMIUM_EXTRA_ARGS`` are added (e.g. --host-resolver-rules)."""
    need(Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None, f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=CHROMIUM_ARGS + list(getattr(request.module, "CHROMIUM_EXTRA_ARGS", ())))
        yield browser
        browser.close()


def watch_csp(page) -> list[str]:
    """Chromium reports what the Content-Security-Policy blocked on the console; collect those lines."""
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    return blocked


PHONE = {"width": 412, "height": 915}


@pytest.fixture
def page(chromium, request):
    """A fresh page on a phone-sized screen, or the test module's ``VIEWPORT`` (e.g. a desktop's for the admin)."""
    context = chromium.new_context(viewport=getattr(request.module, "VIEWPORT", PHONE))
    page = context.new_page()
    page.set_default_timeout(15_000)
    blocked = watch_csp(page)
    yield page
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    # Every journey doubles as a check that the policy blocks nothing the pages need (issue 8 item 11).
    assert not blocked, "the Content-Security-Policy blocked:\n" + "\n".join(blocked)


@pytest.fixture(scope="module")
def core(tmp_path_factory, chromium):
    """One server per test module, starting from an existing admin (bootstrap password + token). Depends on
    ``chromium`` so a laptop without it skips before starting a server."""
    server = start_core(tmp_path_factory.mktemp("core"), bootstrap_password=ADMIN_PASSWORD,
                        bootstrap_token=BOOTSTRAP_TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(core):
    client = Api(core.url, BOOTSTRAP_TOKEN)
    yield client
    client.close()
