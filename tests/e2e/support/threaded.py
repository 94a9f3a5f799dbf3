"""Run an aiohttp application on a free 127.0.0.1 port in a background thread with its own event loop.

The e2e tests drive real proxies from plain (synchronous) tests and session-scoped fixtures, so the small
helper servers (echo upstream, stub auth) run beside them in a thread rather than on the test's loop.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from aiohttp import web

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class ThreadedApp:
    """``start()`` binds 127.0.0.1:0 and returns once listening; ``stop()`` shuts down and joins."""

    def __init__(self, app: web.Application, name: str) -> None:
        self.app = app
        self.name = name
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> ThreadedApp:
        ready: Future[int] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self.name, daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=START_TIMEOUT)
        return self

    def _run(self, ready: Future) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._runner = web.AppRunner(self.app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            ready.set_result(site._server.sockets[0].getsockname()[1])
        except BaseException as exc:  # hand any start-up error to the waiting thread
            ready.set_exception(exc)
            loop.close()
            return
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT)
        self._loop = None

    def __enter__(self) -> ThreadedApp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
