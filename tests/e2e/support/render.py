"""Render the ready-to-copy files of configs/ into a test's directory, replacing their ``${NAME}``
placeholders. The tests run exactly these files; there is no second copy of any proxy config.

Only upper-case ``${NAME}`` is a placeholder, so nginx's ``$var`` / ``${var}``, Caddy's ``{$ENV}`` and
``{placeholder}`` pass through untouched.
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


class RenderError(ValueError):
    pass


def render_text(text: str, values: dict[str, str], source: str = "<text>") -> str:
    missing = sorted({m.group(1) for m in PLACEHOLDER.finditer(text)} - values.keys())
    if missing:
        raise RenderError(f"{source}: no value for placeholder(s) {', '.join(missing)}; pass them in values")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def placeholders(relative: str) -> set[str]:
    """The placeholder names used by configs/<relative>."""
    return {m.group(1) for m in PLACEHOLDER.finditer((CONFIGS / relative).read_text())}


def render(relative: str, dest: Path, values: dict[str, str]) -> Path:
    """configs/<relative> with ``values`` filled in, written to ``dest`` (a file path); returns ``dest``."""
    source = CONFIGS / relative
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render_text(source.read_text(), values, str(source)))
    return dest
