"""The configuration stamp: per-process caches of configuration that every replica drops on the next request after
a change (issue 14: the token endpoint's provider, application, signing key and scope mappings).

A save, delete or many-to-many change of a WATCHED model replaces the stamp (one row, ConfigStamp) with a random
value in the writer's own transaction, so the new stamp becomes visible exactly when the change does, in every
process and replica, with or without Redis (pub/sub would arrive after the commit, or not at all). A reader asks
for the stamp (one small query) and uses its cached entry only when it was made under that stamp. The stamp is
random, not a counter: a rolled-back transaction or a restored database never brings back a value with other
data behind it. Without the row (a database flushed by a test) nothing is cached.

Read the stamp BEFORE the data it guards (``ProcessCache.get`` then the load): a change committed in between is
then cached under the old stamp and reloaded on the next request, never the other way round. Both come from the
same database, the primary (``alias``): a read replica may lag behind it.
"""

from __future__ import annotations

import functools
import pickle
import secrets

from django.db import connections, router
from django.db.models.signals import m2m_changed, post_delete, post_save

ROW = 1


@functools.cache
def _watched() -> tuple:
    from core.accounts.models import Application, PropertyMapping, Provider
    from core.crypto.models import CertificateKeyPair
    from core.policies.models import Policy, PolicyBinding

    return (Provider, Application, PropertyMapping, CertificateKeyPair, Policy, PolicyBinding)


def alias() -> str:
    """The primary (where writes go): a read replica may lag behind it, and the rows behind a cache entry must come
    from the database its stamp came from (load them inside ``transaction.atomic(using=alias())``, which the
    replica router sends to the primary; core/dbrouter.py)."""
    from core.system.models import ConfigStamp

    return router.db_for_write(ConfigStamp)


def current(using: str) -> str | None:
    """The stamp in ``using`` (a database alias), or None when there is none (then nothing may be cached).
    Raw SQL: the ORM would cost more than the query (~0.3 ms of CPU) on a path that exists to save queries."""
    from core.system.models import ConfigStamp

    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT stamp FROM {ConfigStamp._meta.db_table} WHERE id = %s", [ROW])  # noqa: S608
        row = cursor.fetchone()
    return row[0] if row else None


def bump(using: str | None = None) -> None:
    """Replace the stamp in the current transaction of ``using`` (creating the row when a flush removed it)."""
    from core.system.models import ConfigStamp

    ConfigStamp.objects.using(using or router.db_for_write(ConfigStamp)).bulk_create(
        [ConfigStamp(id=ROW, stamp=secrets.token_hex(16))], update_conflicts=True, unique_fields=["id"],
        update_fields=["stamp"])


class ProcessCache:
    """key -> (stamp, pickled value): each ``get`` returns fresh objects (unpickled), so what a request does to them
    (a scope mapping may set attributes on ``provider``) never reaches another request. Bounded by ``limit``
    entries, cleared when full (configuration, not users). A dict read or write is atomic: threads share it."""

    def __init__(self, limit: int = 256):
        self.limit = limit
        self.entries: dict = {}

    def get(self, key, stamp: str | None):
        found = self.entries.get(key)
        if stamp is None or found is None or found[0] != stamp:
            return None
        return pickle.loads(found[1])  # noqa: S301 - bytes this process pickled itself

    def put(self, key, stamp: str | None, value) -> None:
        if stamp is None:
            return
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[key] = (stamp, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _changed(sender, instance=None, **kwargs) -> None:
    if isinstance(instance, _watched()) and kwargs.get("action", "post_").startswith("post_"):
        bump(kwargs.get("using"))


def connect() -> None:
    """Called from the app config's ready(): one receiver for every model (filtered in _changed)."""
    post_save.connect(_changed, dispatch_uid="gatehouse-config-stamp-save")
    post_delete.connect(_changed, dispatch_uid="gatehouse-config-stamp-delete")
    m2m_changed.connect(_changed, dispatch_uid="gatehouse-config-stamp-m2m")
