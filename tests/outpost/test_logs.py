"""outpost/logs.py: what AUTHENTIK_LOG_LEVEL sets, and redaction (issue 8 item 16)."""

import logging

import pytest

from outpost import logs


@pytest.mark.parametrize(("level", "root", "own"), [
    ("info", logging.INFO, logging.INFO),
    ("debug", logging.INFO, logging.DEBUG),  # our debug lines, not every library's
    ("trace", logging.DEBUG, logs.TRACE),
    ("warning", logging.WARNING, logging.WARNING),
    ("error", logging.ERROR, logging.ERROR),
])
def test_levels(level, root, own):
    assert logs.levels(level) == (root, own)


@pytest.mark.parametrize("level", ["trace", "debug", "info"])
def test_loggers_that_log_secrets_stay_at_info(level):
    """Django's SQL log carries query parameters (token hashes, session keys) and authlib logs tokens at DEBUG."""
    levels = logs.logger_levels(level)
    assert levels["django.db.backends"] >= logging.INFO and levels["authlib"] >= logging.INFO


@pytest.fixture
def restore_logging():
    """configure() replaces the root handlers (pytest's capture among them): put everything back."""
    root = logging.getLogger()
    names = ["", *logs.logger_levels("info")]
    saved = root.handlers[:], {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = saved[0]
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


def test_configure_applies_the_levels(restore_logging):
    logs.configure("trace")
    assert logging.getLogger("gatehouse.outpost.link").getEffectiveLevel() == logs.TRACE
    assert logging.getLogger("aiohttp.client").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("django.db.backends").getEffectiveLevel() == logging.INFO
    assert logging.getLevelName(logs.TRACE) == "TRACE"
    logs.configure("info")
    assert logging.getLogger("gatehouse.outpost.link").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("aiohttp.client").getEffectiveLevel() == logging.INFO


def test_redact_hides_values_of_secret_keys():
    assert logs.redact({"slug": "x", "name": "n", "client_secret": "s", "key": "k", "password": "p",
                        "identifier": "tok-1"}) == {
        "slug": "x", "name": "n", "client_secret": logs.REDACTED, "key": logs.REDACTED,
        "password": logs.REDACTED, "identifier": "tok-1"}
