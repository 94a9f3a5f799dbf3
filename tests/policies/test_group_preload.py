"""An expression that runs in an evaluator process and names the user's groups gets them with the pickled user
(core/policies/isolation.py _preload_groups): the evaluator sends no query for them, and the answer is the same
as in the calling thread, uncommitted memberships included."""

from __future__ import annotations

import pytest

from core.accounts.models import Group, User
from core.policies import expression, isolation
from core.policies.types import PolicyRequest

pytestmark = pytest.mark.django_db
SOURCE = ("names = []\nfor g in request.user.all_groups():\n    names.append(g.name)\n"  # a loop: an evaluator
          "names.sort()\nak_message(','.join(names))\nreturn 'b' in names")


def test_groups_travel_with_the_user_and_no_query_crosses_the_pipe(monkeypatch):
    alice = User.objects.create(username="alice-groups")
    alice.groups.add(Group.objects.create(name="a"), Group.objects.create(name="b"))  # uncommitted (test transaction)
    alice = User.objects.get(pk=alice.pk)
    assert not expression.runs_in_process(SOURCE)
    sent: list = []
    real = isolation._run_sql
    monkeypatch.setattr(isolation, "_run_sql", lambda message, *rest: sent.append(message[2]) or real(message, *rest))
    result = expression.evaluate(SOURCE, PolicyRequest(user=alice), timeout=10)
    assert result.passing is True and result.messages == ("a,b",)
    assert not [sql for sql in sent if "group" in sql.lower()], sent


def test_an_expression_without_groups_loads_none():
    bob = User.objects.create(username="bob-groups")
    bob = User.objects.get(pk=bob.pk)
    result = expression.evaluate("return len([x for x in request.user.username]) == 10", PolicyRequest(user=bob),
                                 timeout=10)
    assert result.passing is True and "_all_groups" not in bob.__dict__
