"""core/locks.py: PostgreSQL advisory locks shared by the replicas (the PostgreSQL pass runs these)."""

from __future__ import annotations

import threading

import pytest

from core.locks import advisory
from core.worker import EXPIRY_LOCK_ID, expire_exclusively

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
LOCK = 0x7465_7374  # this test's own


def other_process_connection():
    """A connection of its own to the test database, standing for another replica."""
    import psycopg
    from django.db import connection

    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"] or None,
                           dbname=s["NAME"])


def test_expiry_pass_is_skipped_while_another_worker_runs_it():
    with other_process_connection() as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [EXPIRY_LOCK_ID])  # held until this transaction ends
        assert expire_exclusively() == {"skipped": 1}
    assert "sessions" in expire_exclusively()  # released with the other's transaction


def test_a_waiter_gets_the_lock_only_after_the_holder_lets_go():
    order = []
    holder_in, release = threading.Event(), threading.Event()

    def holder():
        with other_process_connection() as other:
            other.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK])
            holder_in.set()
            release.wait(30)
            order.append("released")

    thread = threading.Thread(target=holder)
    thread.start()
    assert holder_in.wait(30)
    with advisory(LOCK, "test", wait=False) as held:
        assert held is False
    release_timer = threading.Timer(0.3, release.set)
    release_timer.start()
    with advisory(LOCK, "test", poll=0.05) as held:
        order.append("acquired")
        assert held is True
    thread.join(30)
    assert order == ["released", "acquired"]
