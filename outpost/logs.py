"""One structured line per event: JSON when stderr is not a terminal, key=value when it is.

AUTHENTIK_LOG_LEVEL (``trace``, ``debug``, ``info``, ``warning``, ``error``) sets the level of Gatehouse's own
loggers (``gatehouse.*``). ``debug`` adds what an operator needs to follow a login: flow stages and their results,
policy results with their reasons, outpost link messages, blueprint decisions. ``trace`` adds every link frame and
bulk policy evaluations, and lets other libraries' debug lines through, except those that can carry secrets
(SQL with its parameters, the OAuth library's token handling). Below ``debug`` other libraries stay at ``info``:
their debug output (template variable lookups, connection pools) is noise for an operator.

Lines never carry secrets: passwords, token keys, cookies, session keys, client secrets (``redact()`` for mappings
that come from configuration).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

TRACE = 5  # below DEBUG, as authentik's (logrus) trace level
logging.addLevelName(TRACE, "TRACE")

OWN_LOGGER = "gatehouse"
# Kept at INFO even at trace: they log SQL parameters / token values at DEBUG.
SECRET_BEARING_LOGGERS = ("django.db.backends", "authlib")
SECRET_WORDS = ("password", "secret", "token", "key", "cookie", "session", "authorization", "credential")
REDACTED = "***"

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def levels(level: str) -> tuple[int, int]:
    """(root level, ``gatehouse`` logger level) for an AUTHENTIK_LOG_LEVEL value."""
    own = {"trace": TRACE, "debug": logging.DEBUG}.get(level) or logging.getLevelName(level.upper())
    root = logging.DEBUG if own == TRACE else max(own, logging.INFO)
    return root, own


def redact(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with the value of every key that names a secret replaced (for log lines)."""
    return {k: REDACTED if any(word in str(k).lower() for word in SECRET_WORDS) else v for k, v in values.items()}


_JSON = json.JSONEncoder(default=str)  # json.dumps(..., default=str) without a new encoder per line


class StructuredFormatter(logging.Formatter):
    def __init__(self, *args, json_output: bool | None = None, **kwargs):
        super().__init__()
        self.json_output = (not sys.stderr.isatty()) if json_output is None else json_output
        self._second: tuple[int, str] = (-1, "")  # the last whole second formatted: (unix second, its text)

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        known = self._second  # one tuple, swapped whole: the formatter may run in two threads
        if known[0] != second:
            known = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{known[1]}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "timestamp": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                fields[key] = value
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if self.json_output:
            return _JSON.encode(fields)
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("timestamp", "level", "logger", "event"))
        return f"{fields['timestamp']} {fields['level']:<7} {fields['logger']}: {fields['event']} {extra}".rstrip()


def logger_levels(level: str) -> dict[str, int]:
    """Per-logger levels besides the root's (for settings.LOGGING and configure())."""
    _, own = levels(level)
    return {OWN_LOGGER: own, "asyncio": logging.WARNING,
            **{name: max(logging.INFO, own) for name in SECRET_BEARING_LOGGERS}}


def configure(level: str = "info") -> None:
    """Logging for the daemons that do not load Django settings (standalone outposts)."""
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    batch = BatchHandler()
    batch.setFormatter(StructuredFormatter())
    for name in BATCHED_LOGGERS:
        logger = logging.getLogger(name)
        for old in logger.handlers:
            if isinstance(old, BatchHandler):
                old.close()
        logger.handlers[:] = [batch]
        logger.propagate = False
    root.setLevel(levels(level)[0])
    for name, value in logger_levels(level).items():
        logging.getLogger(name).setLevel(value)
    # A record's caller (file, line, function), thread, process and multiprocessing names are never written
    # (StructuredFormatter leaves LogRecord's own attributes out): not collecting them saves ~5 µs a line, a
    # tenth of what a cached LDAP lookup costs the outpost. ``_srcfile = None`` is logging's documented switch
    # for skipping findCaller (see the comment above it in logging/__init__.py).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None


ACCESS_LOGGER = "aiohttp.access"  # one line per request (outpost/app.py AccessLog)
OPERATIONS_LOGGER = "gatehouse.outpost.ldap.operations"  # one line per LDAP operation (outpost/ldap/handlers.py)
BATCHED_LOGGERS = (ACCESS_LOGGER, OPERATIONS_LOGGER)  # a line per request: written in batches, off the request path


class BatchHandler(logging.Handler):
    """The access log and the LDAP operation lines off the request's path: ``emit`` only keeps the record; a
    daemon thread formats and writes the lines together, one write for up to CAPACITY lines, when CAPACITY are
    kept or every INTERVAL seconds, and at exit (logging.shutdown flushes every handler). Past LIMIT kept lines
    the emitting thread writes them itself (bounded memory when the thread falls behind). Each line keeps its
    own timestamp; such a line may appear up to INTERVAL after other lines logged later."""

    CAPACITY = 256
    LIMIT = 8 * CAPACITY
    INTERVAL = 0.2

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._records: list[logging.LogRecord] = []
        self._stopped = threading.Event()
        self._full = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="access-log", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)  # list.append is atomic under the GIL
        kept = len(self._records)
        if kept == self.CAPACITY:
            self._full.set()  # the thread writes them
        elif kept >= self.LIMIT:
            self.flush()  # the thread is not keeping up: write them here rather than hold more

    def flush(self) -> None:
        with self.lock:
            records, self._records = self._records, []
            if not records:
                return
            lines = []
            for record in records:
                try:
                    lines.append(self.format(record))
                except Exception:  # noqa: BLE001 - as logging's handlers: a bad record never stops the others
                    self.handleError(record)
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except Exception:  # noqa: BLE001
                self.handleError(records[-1])

    def _tick(self) -> None:
        while not self._stopped.is_set():
            self._full.wait(self.INTERVAL)
            self._full.clear()
            self.flush()

    def close(self) -> None:
        self._stopped.set()
        self._full.set()
        self.flush()
        super().close()
