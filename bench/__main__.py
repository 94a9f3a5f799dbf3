"""``make bench`` / ``python -m bench [name ...]``: run the benchmarks, each printing its figures next to a
reference measured in the same run. No thresholds: figures are read by people and copied into the README."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.monotonic()
        try:
            module.main()
        except Exception as exc:  # report and go on with the other benchmarks
            failed.append(name)
            print(f"bench.{name} failed: {exc!r}", flush=True)
        print(f"(bench.{name} took {time.monotonic() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
