"""``ak outpost proxy|ldap|radius [--workers N]``: a standalone outpost (needs AUTHENTIK_HOST and
AUTHENTIK_TOKEN; reference §1.1). Also ``python -m outpost ...``. Exit status 2 on a configuration error,
with one message naming every variable to fix."""

from __future__ import annotations

import argparse
import multiprocessing
import sys

from outpost import logs
from outpost.config import OutpostConfig, OutpostConfigError, load

MAX_WORKERS = 64


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ak outpost", description="Run a standalone outpost next to the "
                                     "applications it protects (needs AUTHENTIK_HOST and AUTHENTIK_TOKEN).")
    parser.add_argument("kind", choices=("proxy", "ldap", "radius"), help="which outpost to run")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes sharing the listeners (SO_REUSEPORT); more than 1 needs "
                             "AUTHENTIK_REDIS__HOST so that they share proxy sessions (default 1)")
    return parser


def _run(config: OutpostConfig, kind: str, reuse_port: bool) -> None:
    import asyncio

    from outpost.app import serve

    logs.configure(config.log_level)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # a dependency; a plain loop still works
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(config, kind, reuse_port=reuse_port))


def _child(kind: str) -> None:
    """A --workers process: it reads the same environment (spawned, not forked: no shared loop)."""
    _run(load(), kind, reuse_port=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    problems = []
    try:
        config = load()
    except OutpostConfigError as exc:
        problems, config = list(exc.problems), None
    if not 1 <= args.workers <= MAX_WORKERS:
        problems.append(f"--workers {args.workers}: expected 1 to {MAX_WORKERS}")
    elif args.workers > 1 and args.kind == "proxy" and config is not None and not config.redis_url:
        problems.append("--workers > 1 needs AUTHENTIK_REDIS__HOST: each process would otherwise keep its own "
                        "proxy sessions")
    if problems:
        print(OutpostConfigError(problems), file=sys.stderr)
        return 2
    if args.workers == 1:
        try:
            _run(config, args.kind, reuse_port=False)
        except OSError as exc:  # a listener that cannot bind: the message names the variable
            print(f"gatehouse outpost: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.kind == "proxy":  # one certificate for every worker: made here, before they start and race to make it
        from outpost.app import tls_context

        tls_context(config)
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_child, args=(args.kind,), daemon=True) for _ in range(args.workers - 1)]
    for child in children:
        child.start()
    try:
        _run(config, args.kind, reuse_port=True)
    except OSError as exc:
        print(f"gatehouse outpost: {exc}", file=sys.stderr)
        return 1
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
