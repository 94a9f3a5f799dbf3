"""outpost/logs.py: what AUTHENTIK_LOG_LEVEL sets, and redaction (issue 8 item 16)."""

import logging
import time

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
    batched = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
               for name in logs.BATCHED_LOGGERS}
    switches = logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile
    yield
    root.handlers[:] = saved[0]
    for name, (handlers, propagate) in batched.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            handler.close()
        logger.handlers[:], logger.propagate = handlers, propagate
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile = switches
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


def test_access_lines_are_written_in_batches(tmp_path):
    """BatchHandler: every line, in order, once; written by its thread when CAPACITY are kept, by the emitting
    thread past LIMIT, and at close."""
    out = (tmp_path / "access.log").open("w+")
    handler = logs.BatchHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.CAPACITY, handler.LIMIT, handler.INTERVAL = 4, 8, 60.0

    def record(i):
        return logging.LogRecord(logs.ACCESS_LOGGER, logging.INFO, "", 0, f"line {i}", None, None)

    def written():
        out.seek(0)
        return out.read().splitlines()

    for i in range(3):
        handler.emit(record(i))
    assert written() == []  # kept, not yet written
    handler.emit(record(3))  # CAPACITY: the thread writes them
    deadline = time.monotonic() + 10
    while len(written()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written() == [f"line {i}" for i in range(4)]
    handler.close()
    assert not handler._thread.is_alive() or handler._thread.join(5) is None
    handler = logs.BatchHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.CAPACITY, handler.LIMIT, handler.INTERVAL = 1000, 3, 60.0
    for i in range(4, 7):
        handler.emit(record(i))  # the third reaches LIMIT: written here
    assert written()[-3:] == ["line 4", "line 5", "line 6"]
    handler.emit(record(7))
    handler.close()
    assert written() == [f"line {i}" for i in range(8)]
