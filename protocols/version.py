"""Gatehouse's version, from one source: ``version`` in pyproject.toml (through the installed distribution's
metadata, or the file itself in a source checkout that is not installed). The outposts send it in the
websocket HELLO, in ``User-Agent: goauthentik.io/outpost/<version>`` and in ``X-authentik-meta-version``."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "gatehouse"
UNKNOWN = "0+unknown"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return UNKNOWN


VERSION = _version()
