"""Expression policies: what they can do, said truthfully, and a timeout that is real (issue 8, item 11).

An expression is an administrator's Python with the core's database access (through the model objects it is
handed), like authentik's; the refused names are guard rails, not a sandbox. Only superusers write them.
Its timeout used to be a line tracer: ``while True: pass`` on one line, a long C-level call or a slow query
ran forever and held a worker thread. Now an expression that is not provably short runs in a separate
process that is killed at the binding's timeout (its database queries run on the caller's connection and
are cancelled too); the policy then fails closed, with a message naming it.
"""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.accounts.models import Group, Token, TokenIntents, User
from core.events.models import Event
from core.policies import expression
from core.policies.engine import evaluate, user_has_access
from core.policies.models import ExpressionPolicy, PolicyBinding
from core.policies.types import PolicyRequest


def _bind(app, source: str, name: str, timeout: int = 1) -> PolicyBinding:
    policy = ExpressionPolicy.objects.create(name=name, expression=source)
    return PolicyBinding.objects.create(target=app, policy=policy, order=0, timeout=timeout)


def _endless_query() -> str:
    if connection.vendor == "postgresql":
        return "SELECT 1 AS id FROM pg_sleep(3600)"
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS id FROM c"


RUNAWAYS = {
    "one-line loop": "while True: pass",
    "counting loop": "n = 0\nwhile True:\n    n += 1",
    "C-level call": "return sum(range(10 ** 15))",
    "catastrophic regex": "return regex_match('a' * 64 + '!', '^(a+)+$')",
    "endless query": "return list(request.user.groups.model.objects.raw({query!r}))",
}


@pytest.mark.django_db(transaction=True)  # a cancelled query must not take a test transaction with it
@pytest.mark.parametrize("kind", list(RUNAWAYS))
def test_a_runaway_expression_is_stopped_at_its_timeout_and_fails_closed(app, alice, kind):
    source = RUNAWAYS[kind].format(query=_endless_query())
    _bind(app, source, name=f"runaway {kind}")  # failure_result: False, the default
    passing, messages = user_has_access(alice, app)
    assert passing is False
    assert messages == [f"Policy 'runaway {kind}' failed."]
    event = Event.objects.get(action="policy_exception")
    assert event.context["policy"] == f"runaway {kind}" and "timeout of 1 s" in event.context["message"]
    # The caller's database connection still works after a cancelled query.
    assert User.objects.filter(username="alice").exists()


@pytest.mark.django_db
def test_the_next_evaluation_after_a_kill_works(app, alice):
    _bind(app, "while True: pass", name="stuck")
    assert user_has_access(alice, app)[0] is False
    PolicyBinding.objects.all().delete()
    _bind(app, "return [g for g in ('a', 'b')] == ['a', 'b']", name="fine")
    assert user_has_access(alice, app) == (True, [])


def test_short_expressions_stay_in_the_calling_thread():
    """The common path stays as cheap as before: no process for straight-line code with known helpers."""
    for source in ("return False", "return ak_is_group_member(request.user, name='admins')",
                   "return {'email': request.user.email, 'email_verified': False}",
                   "x = request.context.get('token')\nreturn x is None or x.session_id == 'a'",
                   "ak_message('hi ' + request.user.username)\nreturn True",
                   # one pass without calls over what a query returned (the default profile scope mapping)
                   "return [g.name for g in request.user.all_groups()]",
                   "return sorted(g.name for g in request.user.all_groups() if g.name)",
                   "return {k: v for k, v in request.context.items()}"):
        assert expression.runs_in_process(source), source
    for source in ("while True: pass", "return [[a for a in g.name] for g in request.user.all_groups()]",
                   "return [a + b for a in request.user.name for b in request.user.name]",
                   "return [ak_is_group_member(request.user, name=n) for n in request.user.name]",
                   "return [len(g.name) for g in request.user.all_groups()]", "return [x for x in range(10 ** 9)]",
                   "return [x for x in request.user.name if (y := x)]",
                   "return sum(range(10 ** 9))", "return 'a' * 10 ** 9", "return regex_match(request.user.name, 'x')",
                   "return request.user.groups.model.objects.raw('select 1')", "f = lambda: 1\nreturn f()",
                   "return f'{request.user.name:>999999999}'", "return '%*s' % (10 ** 9, 'x')"):
        assert not expression.runs_in_process(source), source


# --- the separate process behaves like the calling thread -----------------------------------------------


@pytest.mark.django_db
def test_the_process_sees_the_callers_transaction_and_writes_back(app, alice):
    """Data written earlier in the same request (not committed yet) is visible, as in authentik's process."""
    alice.groups.add(Group.objects.create(name="fresh"))  # uncommitted: inside the test's transaction
    alice = User.objects.get(pk=alice.pk)
    live: dict = {"pending_user": alice.pk}

    class Plan:  # core/flows/planner.py's handle: writes go through to the live plan context
        def __init__(self):
            self.context = live

    request = PolicyRequest(user=alice, context={"flow_plan": Plan(), "prompt_data": {"a": 1}})
    source = ("names = []\nfor g in request.user.all_groups():\n    names.append(g.name)\n"
              "context['flow_plan'].context['groups_seen'] = names\n"
              "context['prompt_data']['b'] = 2\n"
              "request.context['added'] = len(names)\n"
              "ak_message('seen ' + ','.join(names))\n"
              "return 'fresh' in names")
    assert not expression.runs_in_process(source)
    result = expression.evaluate(source, request, timeout=10)
    assert result.passing is True and result.messages == ("seen fresh",)
    assert live["groups_seen"] == ["fresh"]
    assert request.context["prompt_data"] == {"a": 1, "b": 2} and request.context["added"] == 1


@pytest.mark.django_db
def test_errors_in_the_process_keep_their_type(app, alice):
    _bind(app, "return [1 / 0 for n in range(2)]", name="divides")
    assert user_has_access(alice, app)[0] is False
    assert "ZeroDivisionError" in Event.objects.get(action="policy_exception").context["message"]


@pytest.mark.django_db(transaction=True)  # on PostgreSQL a failed statement aborts the caller's transaction,
def test_query_errors_in_the_process_become_failures_not_crashes(app, alice):  # as it would in the thread
    _bind(app, "return list(request.user.groups.model.objects.raw('SELECT * FROM no_such_table'))", name="bad sql")
    assert user_has_access(alice, app)[0] is False
    assert Event.objects.get(action="policy_exception").context["policy"] == "bad sql"
    assert evaluate(app, alice).passing is False  # and the connection still answers


# --- who may write one, and what it can do ---------------------------------------------------------------


@pytest.mark.django_db
def test_only_superusers_write_expressions(alice):
    token = Token(identifier="alice-api", intent=TokenIntents.INTENT_API, user=alice)
    key = token.set_key()
    token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    for path, body in (("/api/v3/policies/expression/", {"name": "x", "expression": "return True"}),
                       ("/api/v3/propertymappings/provider/scope/",
                        {"name": "x", "scope_name": "x", "expression": "return {}"})):
        assert client.post(path, body, format="json").status_code == 403, path
    assert not ExpressionPolicy.objects.exists()


@pytest.mark.django_db
def test_an_expression_reaches_the_database_as_the_readme_says(alice):
    """Not a sandbox: through the objects it is handed, an expression runs any SQL the core's role may."""
    alice.groups.add(Group.objects.create(name="staff"))
    source = ("rows = request.user.groups.model.objects.raw('SELECT group_uuid, (SELECT max(username) "
              "FROM authentik_core_user) AS everyone FROM authentik_core_group')\n"
              "return [row.everyone for row in rows] == ['alice']")
    result = expression.evaluate(source, PolicyRequest(user=alice), timeout=10)
    assert result.passing is True


@pytest.mark.django_db
def test_an_idle_evaluator_that_died_is_replaced(alice):
    import os
    import signal

    from core.policies import isolation

    source = "return [n for n in (1, 2)] == [1, 2]"
    assert expression.evaluate(source, PolicyRequest(user=alice), timeout=10).passing
    pool = isolation._pool()
    for evaluator in list(pool.idle):
        os.kill(evaluator.pid, signal.SIGKILL)
        os.waitpid(evaluator.pid, 0)
    assert expression.evaluate(source, PolicyRequest(user=alice), timeout=10).passing
