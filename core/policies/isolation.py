"""Run an expression in a separate process that is killed at its timeout.

A thread cannot be stopped while it is inside one long C call (``sum(range(10**15))``, a regex that
backtracks, a slow query), and a line tracer misses ``while True: pass``: only a process can be stopped
whatever it runs. authentik runs each policy in a forked process for the same reason
(authentik/policies/process.py); forking per evaluation costs 5-45 ms here, so Gatehouse keeps a few forked
evaluators and reuses them, and sends each one the request (pickled) and the expression.

The evaluator has no database connection of its own: its queries are sent back and run by the caller on
the caller's connection, so an expression sees (and writes into) the caller's transaction exactly as it
would in the calling thread, on SQLite and PostgreSQL alike. When the timeout passes the evaluator is
killed (SIGKILL) and a query it is waiting for is cancelled (``sqlite3.Connection.interrupt``,
``psycopg.Connection.cancel``); the caller gets ExpressionTimeout.

What an expression changes comes back: its messages, the top-level keys of ``request.context`` it set or
changed (compared by their pickled form, so in-place changes count) and what it wrote into
``context["flow_plan"].context`` (authentik's way to hand data to the flow plan).

The pool is per process (like Django's connection handler), created on first use, and starts afresh in a
forked child (it checks the pid). Evaluators die with their parent: the pipe closes, and on Linux
PR_SET_PDEATHSIG kills one that is busy.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import pickle
import signal
import threading
import time
from collections import deque
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

LOGGER = logging.getLogger("gatehouse.policies.isolation")
MAX_IDLE = 8  # evaluators kept between evaluations (one per concurrent evaluation is forked on demand)
MAX_JOBS = 1000  # an evaluator is replaced after this many evaluations, bounding what it accumulates
PLAN_KEY = "flow_plan"
PR_SET_PDEATHSIG = 1


class EvaluatorTimeout(Exception):
    """The evaluation ran past its timeout; the evaluator was killed."""


class EvaluatorFailed(Exception):
    """The evaluator could not run the expression (not the expression's own error); the message says why."""


# ---------------------------------------------------------------------------------------------------------
# The evaluator process


class _ProxyCursor:
    """A DB-API cursor in the evaluator whose statements run in the parent, on the caller's connection."""

    def __init__(self, link: Connection):
        self._link = link
        self._rows: deque = deque()
        self.description = None
        self.rowcount = -1
        self.lastrowid = None

    def _run(self, how: str, sql: str, params) -> None:
        self._link.send(("sql", how, sql, list(params) if how == "executemany" else params))
        kind, *answer = self._link.recv()
        if kind == "error":
            raise answer[0]
        self.description, rows, self.rowcount, self.lastrowid = answer
        self._rows = deque(rows or ())

    def execute(self, sql, params=None):
        self._run("execute", sql, params)
        return self

    def executemany(self, sql, param_list):
        self._run("executemany", sql, param_list)
        return self

    def fetchone(self):
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int = 100):
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    def fetchall(self):
        rows, self._rows = list(self._rows), deque()
        return rows

    def __iter__(self):
        while self._rows:
            yield self._rows.popleft()

    def close(self):
        self._rows = deque()


def _proxy_database(link: Connection, keep: list) -> None:
    """Point the evaluator's Django connections at the parent. The inherited DB-API connections belong to
    the parent: kept referenced (never closed or finalized here), never used."""
    from django.db import connections

    for alias in connections:
        wrapper = connections[alias]
        keep.append(wrapper.connection)
        wrapper.connection = SimpleNamespace(autocommit=True)  # what Django reads of a DB-API connection
        wrapper.create_cursor = lambda name=None: _ProxyCursor(link)
        # Transactions are the caller's: the evaluator's own atomic blocks and commits change nothing.
        wrapper._set_autocommit = wrapper._commit = wrapper._rollback = lambda *args: None
        wrapper._savepoint_allowed = lambda: False
        wrapper.close = wrapper.close_if_unusable_or_obsolete = lambda: None
        wrapper.is_usable = lambda: True
        wrapper.in_atomic_block, wrapper.atomic_blocks, wrapper.savepoint_ids = False, [], []
        wrapper.needs_rollback, wrapper.autocommit, wrapper.closed_in_transaction = False, True, False


def _fingerprint(value) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an unpicklable value counts as changed only when replaced
        return b"id:%d" % id(value)


def _diff(before: dict[str, bytes], after: dict) -> tuple[dict, list]:
    changed = {k: v for k, v in after.items() if before.get(k) != _fingerprint(v)}
    return changed, [k for k in before if k not in after]


def _run_job(job: tuple) -> tuple:
    from core.policies import expression
    from core.policies.types import PolicyRequest

    _, source, user, http_request, obj, context, plan_context = job
    if plan_context is not None:
        context[PLAN_KEY] = SimpleNamespace(context=plan_context)
    request = PolicyRequest(user=user, http_request=http_request, obj=obj, context=context)
    before = {k: _fingerprint(v) for k, v in context.items() if k != PLAN_KEY}
    plan_before = {k: _fingerprint(v) for k, v in (plan_context or {}).items()}
    try:
        result = expression.evaluate_here(source, request)
    except Exception as exc:  # noqa: BLE001 - the expression's own error travels back to the engine
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            exc = EvaluatorFailed(f"{type(exc).__name__}: {exc}")
        return ("raised", exc)
    changed, removed = _diff(before, {k: v for k, v in request.context.items() if k != PLAN_KEY})
    plan_changed, _ = _diff(plan_before, plan_context or {})
    return ("done", result, changed, removed, plan_changed)


def _evaluator_main(link: Connection) -> None:
    """The forked evaluator's whole life: answer jobs until the parent closes the pipe."""
    keep: list = []
    gc.freeze()  # the inherited heap is never collected here: fewer pages copied on write
    signal.set_wakeup_fd(-1)  # the parent's event loop must not hear this process's signals
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    with contextlib.suppress(Exception):  # Linux: die with the parent even while busy
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _proxy_database(link, keep)
    while True:
        try:
            job = link.recv()
        except (EOFError, OSError):
            break
        answer = _run_job(job)
        try:
            link.send(answer)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
            link.send(("raised", EvaluatorFailed(f"the expression's result cannot be returned: {exc}")))


# ---------------------------------------------------------------------------------------------------------
# The caller's side


class _Evaluator:
    def __init__(self, pid: int, link: Connection):
        self.pid, self.link, self.jobs = pid, link, 0

    @classmethod
    def start(cls, inherited: list[_Evaluator]) -> _Evaluator:
        ours, theirs = Pipe(duplex=True)
        pid = os.fork()
        if pid == 0:  # the evaluator: never returns
            code = 0
            try:
                ours.close()
                for other in inherited:  # the other evaluators' pipes are not ours to hold open
                    other.link.close()
                _evaluator_main(theirs)
            except BaseException:  # noqa: BLE001 - whatever happens, never run the parent's code here
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        return cls(pid, ours)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, 0)
        self.link.close()

    def retire(self) -> None:
        self.link.close()  # EOF: the evaluator leaves its loop and exits
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, 0)


class _Pool:
    def __init__(self):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.idle: list[_Evaluator] = []
        self.live: list[_Evaluator] = []
        self.watchdog = _Watchdog()

    def acquire(self) -> _Evaluator:
        with self.lock:
            if self.idle:
                return self.idle.pop()
            evaluator = _Evaluator.start(self.live)
            self.live.append(evaluator)
            return evaluator

    def release(self, evaluator: _Evaluator, healthy: bool) -> None:
        with self.lock:
            keep = healthy and evaluator.jobs < MAX_JOBS and len(self.idle) < MAX_IDLE
            if keep:
                self.idle.append(evaluator)
                return
            self.live.remove(evaluator)
        evaluator.kill() if not healthy else evaluator.retire()


class _Watchdog:
    """One thread that cancels the queries evaluators wait for when their deadline passes (a Timer per
    statement cost a thread start each: milliseconds on a busy machine)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.armed: dict[int, tuple[float, Any]] = {}
        self.serial = 0
        self.thread: threading.Thread | None = None

    def arm(self, deadline: float, stop) -> int:
        with self.cond:
            self.serial += 1
            self.armed[self.serial] = (deadline, stop)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="expression-watchdog", daemon=True)
                self.thread.start()
            self.cond.notify()
            return self.serial

    def disarm(self, serial: int) -> None:
        with self.cond:
            self.armed.pop(serial, None)

    def _loop(self) -> None:
        while True:
            with self.cond:
                now = time.monotonic()
                due = [self.armed.pop(k)[1] for k, (d, _) in list(self.armed.items()) if d <= now]
                if not due:
                    nearest = min((d for d, _ in self.armed.values()), default=None)
                    self.cond.wait(None if nearest is None else nearest - now)
                    continue
            for stop in due:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    stop()


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = _Pool()
        return _POOL


def _run_sql(message: tuple, deadline: float, watchdog: _Watchdog):
    """One statement of the evaluator's, on this thread's connection; cancelled at the deadline."""
    from django.db import connection

    _, how, sql, params = message
    connection.ensure_connection()
    raw = connection.connection
    stop = getattr(raw, "interrupt", None) or getattr(raw, "cancel", None)  # sqlite3 / psycopg
    armed = watchdog.arm(deadline, stop) if stop else None
    cursor = connection.create_cursor()
    try:
        if how == "executemany":
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        rows = cursor.fetchall() if cursor.description else None
        description = tuple(tuple(column)[:7] for column in cursor.description) if cursor.description else None
        rows = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows] if rows else rows
        return ("rows", description, rows, cursor.rowcount, getattr(cursor, "lastrowid", None))
    except Exception as exc:  # noqa: BLE001 - the evaluator's Django turns it into its DatabaseError
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            exc = connection.Database.DatabaseError(str(exc))
        return ("error", exc)
    finally:
        if armed is not None:
            watchdog.disarm(armed)
        cursor.close()


def _split(context: dict) -> tuple[dict, Any]:
    """The context to send, and the flow plan's handle (sent as its plain context, written back through it)."""
    handle = context.get(PLAN_KEY)
    if handle is not None and isinstance(getattr(handle, "context", None), dict):
        return {k: v for k, v in context.items() if k != PLAN_KEY}, handle
    return dict(context), None


def _sent(pool: _Pool, payload: bytes) -> _Evaluator:
    """An evaluator that took the job; an idle one that died meanwhile (its parent thread ended) is replaced."""
    for attempt in (1, 2):
        evaluator = pool.acquire()
        try:
            evaluator.link.send_bytes(payload)
        except OSError:
            pool.release(evaluator, healthy=False)
            if attempt == 2:
                raise EvaluatorFailed("the expression's process could not be started") from None
            continue
        evaluator.jobs += 1
        return evaluator
    raise AssertionError("unreachable")


GROUP_NAMES = ("all_groups", "ak_is_group_member")


def _preload_groups(source: str, user) -> None:
    """Load the user's groups here when the expression names them (the default OIDC ``profile`` mapping, group
    policies): they travel with the pickled user (``User.all_groups`` caches them on the instance), so the
    evaluator does not ask for them through the pipe -- a round trip between the processes saved. The same
    query on the same connection and transaction as the evaluator's would have run."""
    all_groups = getattr(user, "all_groups", None)
    if callable(all_groups) and getattr(user, "pk", None) and any(name in source for name in GROUP_NAMES):
        all_groups()


def run(source: str, request, timeout: float):
    """Evaluate ``source`` for ``request`` in an evaluator; apply what it changed; return its result.

    Raises EvaluatorTimeout at ``timeout`` seconds, the expression's own exception when it raised one, and
    EvaluatorFailed when the request cannot be sent or the evaluator died."""
    deadline = time.monotonic() + timeout
    _preload_groups(source, request.user)
    context, plan = _split(request.context)
    job = ("eval", source, request.user, request.http_request, request.obj, context,
           dict(plan.context) if plan is not None else None)
    try:
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001
        raise EvaluatorFailed(f"the request cannot be passed to the expression's process: {exc}") from None
    pool = _pool()
    evaluator = _sent(pool, payload)
    healthy = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not evaluator.link.poll(remaining):
                raise EvaluatorTimeout(f"expression exceeded its timeout of {timeout:g} s and was stopped")
            message = evaluator.link.recv()
            if message[0] == "sql":
                evaluator.link.send(_run_sql(message, deadline, pool.watchdog))
                if time.monotonic() >= deadline:
                    raise EvaluatorTimeout(f"expression exceeded its timeout of {timeout:g} s and was stopped")
                continue
            healthy = True
            break
    except (EOFError, OSError, pickle.PickleError) as exc:
        raise EvaluatorFailed(f"the expression's process ended unexpectedly ({exc or type(exc).__name__})") from None
    finally:
        pool.release(evaluator, healthy)
    if message[0] == "raised":
        raise message[1]
    _, result, changed, removed, plan_changed = message
    for key in removed:
        request.context.pop(key, None)
    request.context.update(changed)
    if plan is not None:
        for key, value in plan_changed.items():
            plan.context[key] = value  # through the handle: the planner writes it into the live plan
    return result
