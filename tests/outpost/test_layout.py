"""The outposts run without the core (a standalone outpost image has no Django to set up): nothing under
``outpost/`` imports ``core`` or Django; what both ends share lives in ``protocols/``. The embedded outpost, which
does need the core's models, is ``core/outposts/embedded.py``."""

import ast
from pathlib import Path

from tests.support.server import REPO

FORBIDDEN = ("core", "django", "rest_framework", "asgiref")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_outpost_imports_neither_core_nor_django():
    found = [f"{path.relative_to(REPO)}: {name}" for path in sorted((REPO / "outpost").rglob("*.py"))
             for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN]
    assert not found, "outpost/ must not import the core (move shared code to protocols/):\n" + "\n".join(found)


def test_protocols_import_neither_core_nor_outpost():
    found = [f"{path.relative_to(REPO)}: {name}" for path in sorted((REPO / "protocols").rglob("*.py"))
             for name in imported_modules(path) if name.split(".")[0] in (*FORBIDDEN, "outpost")]
    assert not found, "protocols/ is shared by both ends and imports neither:\n" + "\n".join(found)
