"""``python -m bench expressions``: what an expression policy evaluation costs, now that its timeout is real.

Short expressions (straight-line code with known helpers) run in the calling thread; the others run in a
pooled evaluator process that is killed at the timeout (core/policies/isolation.py). Measured per
evaluation, median of ``ROUNDS``, in one process with the core's settings on a fresh SQLite database:

- reference, before this change: the same expression in the calling thread under the line tracer that was
  the old timeout (``sys.settrace``), and without it;
- a short expression (``ak_is_group_member``) through ``expression.evaluate``: the calling thread;
- a long one (a comprehension over the user's groups, cached on the user as the engine does) and one
  with a query of its own through ``expression.evaluate``: the evaluator (its query runs on this
  thread's connection);
- a process forked per evaluation, as authentik's PolicyProcess does: why the evaluators are pooled;
- an application's access list for ``USERS`` users (the proxy outpost's snapshot) with a long policy.
No thresholds: figures are printed for people.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

ROUNDS = 300
USERS = 200
SHORT = "return ak_is_group_member(request.user, name='staff')"
LONG = "return 'staff' in [group.name for group in request.user.all_groups()]"
QUERY = "return request.user.groups.model.objects.filter(name='staff').exists()"  # one query, in the evaluator


def _setup() -> None:
    os.environ.setdefault("AUTHENTIK_DATA_DIR", tempfile.mkdtemp(prefix="bench-expressions-"))
    os.environ.setdefault("AUTHENTIK_SECRET_KEY", "bench-expressions-secret-key-0123456789abcdef")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def _median_ms(function, rounds: int = ROUNDS) -> float:
    for _ in range(5):
        function()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _traced(function):
    """The old timeout: a line tracer on the expression's frames (what evaluate() did before)."""
    def tracer(frame, event, arg):
        return (lambda *a: None) if frame.f_code.co_filename == "<expression policy>" else None

    def run():
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            return function()
        finally:
            sys.settrace(previous)

    return run


def _forked(source, request):
    from core.policies import expression

    def run():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, b"1" if expression.evaluate_here(source, request).passing else b"0")
            os._exit(0)
        os.close(write)
        os.read(read, 1)
        os.close(read)
        os.waitpid(pid, 0)

    return run


def main() -> None:
    _setup()
    from core.accounts.models import Application, Group, User
    from core.api.outpost_config import application_access, load_access_users
    from core.policies import expression
    from core.policies.models import ExpressionPolicy, PolicyBinding
    from core.policies.types import PolicyRequest
    from core.providers.proxy.models import ProxyProvider

    staff = Group.objects.create(name="staff")
    users = [User.objects.create_user(f"bench-{n}", f"bench-{n}@example.com") for n in range(USERS)]
    for user in users[::2]:
        user.groups.add(staff)
    user = User.objects.get(pk=users[0].pk)
    request = PolicyRequest(user=user)
    assert expression.runs_in_process(SHORT) and not expression.runs_in_process(LONG)

    print(f"per evaluation, median of {ROUNDS} (ms):")
    for label, source in (("short", SHORT), ("long", LONG), ("query", QUERY)):
        here = _median_ms(lambda s=source: expression.evaluate_here(s, request))
        traced = _median_ms(_traced(lambda s=source: expression.evaluate_here(s, request)))
        now = _median_ms(lambda s=source: expression.evaluate(s, request, timeout=30))
        print(f"  {label:5}  before (thread + line tracer) {traced:7.3f}   thread alone {here:7.3f}   "
              f"now ({'thread' if expression.runs_in_process(source) else 'evaluator'}) {now:7.3f}")
    print(f"  reference: a process forked per evaluation (authentik's PolicyProcess) "
          f"{_median_ms(_forked(LONG, request), rounds=50):7.3f}")

    app = Application.objects.create(name="bench", slug="bench")
    provider = ProxyProvider.objects.create(name="bench", external_host="https://bench.example.com")
    policy = ExpressionPolicy.objects.create(name="bench-long", expression=LONG)
    PolicyBinding.objects.create(target=app, policy=policy, order=0)
    access_users = load_access_users()
    started = time.perf_counter()
    application_access(provider, app, access_users)
    now = time.perf_counter() - started
    original = expression.runs_in_process
    expression.runs_in_process = lambda source: True
    try:
        started = time.perf_counter()
        application_access(provider, app, load_access_users())
        before = time.perf_counter() - started
    finally:
        expression.runs_in_process = original
    print(f"access list of {len(access_users)} users with the long policy: now {now * 1000:.0f} ms, "
          f"in the calling thread {before * 1000:.0f} ms")


if __name__ == "__main__":
    main()
