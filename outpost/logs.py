"""One structured line per event: JSON when stderr is not a terminal, key=value when it is."""

from __future__ import annotations

import json
import logging
import sys
import time

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class StructuredFormatter(logging.Formatter):
    def __init__(self, *args, json_output: bool | None = None, **kwargs):
        super().__init__()
        self.json_output = (not sys.stderr.isatty()) if json_output is None else json_output

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
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
            return json.dumps(fields, default=str)
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("timestamp", "level", "logger", "event"))
        return f"{fields['timestamp']} {fields['level']:<7} {fields['logger']}: {fields['event']} {extra}".rstrip()


def configure(level: str = "info") -> None:
    """Logging for the daemons that do not load Django settings (standalone outposts)."""
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if level in ("debug", "trace") else level.upper())
    logging.getLogger("asyncio").setLevel(logging.WARNING)
