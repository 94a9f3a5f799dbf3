"""Helpers for the blueprint tests: apply YAML text, watch model signals."""

import contextlib

import pytest
from django.db.models.signals import m2m_changed, post_delete, post_save

from core.blueprints.importer import Importer
from core.blueprints.loader import load


def apply_text(text: str, context=None, env=None):
    return Importer(load(text, source="test.yaml"), context=context, env=env).apply()


@contextlib.contextmanager
def watch_signals():
    """Collect every post_save / post_delete / m2m_changed fired inside the block."""
    fired = []

    def receiver(sender, signal=None, **kwargs):
        fired.append((signal_names[signal], sender.__name__, kwargs.get("action")))

    signal_names = {post_save: "post_save", post_delete: "post_delete", m2m_changed: "m2m_changed"}
    for sig in signal_names:
        sig.connect(receiver, dispatch_uid=f"bp-test-{id(fired)}", weak=False)
    try:
        yield fired
    finally:
        for sig in signal_names:
            sig.disconnect(dispatch_uid=f"bp-test-{id(fired)}")


@pytest.fixture
def apply():
    return apply_text
