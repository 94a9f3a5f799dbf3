"""The executor knows each binding's stage kind per process (core/flows/executor.py KindCache), so a plan entry
loads in one query. What it remembered must never decide what runs: a binding pointed at a stage of another
kind, a new binding, a deleted one, and a stage of no kind behave as without the cache."""

from __future__ import annotations

import pytest

from core.flows import models as fm
from core.flows.executor import KINDS

pytestmark = pytest.mark.django_db


def test_a_binding_pointed_at_another_kind_runs_the_new_stage(flows, alice, executor):
    flows.authentication(mfa=False)
    ex = executor("default-authentication-flow")
    assert ex.get()["component"] == "ak-stage-identification"  # the process now knows every binding's kind
    binding = fm.FlowStageBinding.objects.get(target__slug="default-authentication-flow", order=10)
    binding.stage = fm.DenyStage.objects.create(name="deny")
    binding.save()
    fresh = executor("default-authentication-flow")
    assert fresh.get()["component"] == "ak-stage-access-denied"


def test_a_binding_added_later_is_found(flows, alice, executor):
    flow = flows.flow("later", "authentication", [fm.IdentificationStage.objects.create(
        name="later-ident", user_fields=["username"])])
    assert executor("later").get()["component"] == "ak-stage-identification"
    other = flows.flow("later-2", "authentication", [fm.DenyStage.objects.create(name="later-deny")])
    assert executor("later-2").get()["component"] == "ak-stage-access-denied"
    assert str(fm.FlowStageBinding.objects.get(target=other).pk) in KINDS.bindings
    assert flow.pk != other.pk


def test_a_deleted_binding_fails_closed(flows, alice, executor):
    flows.authentication(mfa=False)
    ex = executor("default-authentication-flow")
    assert ex.get()["component"] == "ak-stage-identification"
    fm.FlowStageBinding.objects.filter(target__slug="default-authentication-flow", order=10).delete()
    answer = ex.post(component="ak-stage-identification", uid_field="alice")
    assert answer["component"] == "ak-stage-access-denied"
