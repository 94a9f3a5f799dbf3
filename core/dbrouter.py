"""PostgreSQL for clustered deployments: Django's DATABASES from core.config, and reads routed to read replicas.

``databases(pg)`` builds ``default`` (the primary) and ``replica_<n>`` per
AUTHENTIK_POSTGRESQL__READ_REPLICAS__<n>__* (authentik's names and aliases). ``ReplicaRouter`` (authentik's
FailoverRouter, plus read-your-writes within a request):

* writes, and reads inside a transaction, go to the primary;
* within an HTTP request, once anything was written, every later read of that request goes to the primary
  (a replica may not have the row yet); before that, reads go to a random replica;
* sessions and tokens are always read from the primary: the next request may come right after the login
  that wrote them, to another core replica, before the replica has it;
* outside a request (the worker, the outpost hub, management commands) everything uses the primary.

``PinMiddleware`` marks the request's extent (a context variable holding a mutable flag).
"""

from __future__ import annotations

import contextvars
import random
from dataclasses import dataclass

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

PRIMARY = "default"
# Read right after they are written, often by the next request on another core replica.
PRIMARY_ONLY = frozenset({"sessions.session", "authentik_core.authenticatedsession", "authentik_core.token"})


@dataclass
class _Pin:
    wrote: bool = False


_pin: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar("gatehouse_db_pin", default=None)


def databases(pg) -> dict:
    """Django's DATABASES for a core.config.PostgresConfig (with its read replicas)."""
    result = {PRIMARY: _database(pg)}
    result[PRIMARY]["TEST"] = {"NAME": f"test_{pg.name}"}
    for index, replica in enumerate(pg.read_replicas):
        result[f"replica_{index}"] = {**_database(replica), "TEST": {"MIRROR": PRIMARY}}
    return result


def _database(pg) -> dict:
    options = {"sslmode": pg.sslmode, "connect_timeout": 10}  # an unanswering host: not the TCP timeout (2 min)
    options.update({key: value for key, value in (("sslrootcert", pg.sslrootcert), ("sslcert", pg.sslcert),
                                                  ("sslkey", pg.sslkey)) if value})
    if pg.use_pgbouncer:
        # transaction pooling hands each transaction to any server connection: no prepared statements
        # (PgBouncer < 1.21 cannot keep them) and no cursors across transactions
        options["prepare_threshold"] = None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": pg.host,
        "PORT": pg.port,
        "USER": pg.user,
        "NAME": pg.name,
        "PASSWORD": pg.password,
        "CONN_MAX_AGE": pg.conn_max_age,
        "CONN_HEALTH_CHECKS": pg.conn_health_checks,
        "DISABLE_SERVER_SIDE_CURSORS": pg.disable_server_side_cursors,
        "OPTIONS": options,
    }


class ReplicaRouter:
    def __init__(self, aliases=None):
        if aliases is None:
            from django.conf import settings

            aliases = settings.DATABASES
        self.aliases = frozenset(aliases)
        self.replicas = sorted(a for a in self.aliases if a != PRIMARY)

    def db_for_read(self, model, **hints):
        if not self.replicas or model._meta.label_lower in PRIMARY_ONLY:
            return PRIMARY
        pin = _pin.get()
        if pin is None or pin.wrote:
            return PRIMARY
        from django.db import connections

        if connections[PRIMARY].in_atomic_block:  # one transaction, one snapshot: the primary's
            return PRIMARY
        return random.choice(self.replicas)  # noqa: S311 - load spreading, not security

    def db_for_write(self, model, **hints):
        pin = _pin.get()
        if pin is not None:
            pin.wrote = True
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True if obj1._state.db in self.aliases and obj2._state.db in self.aliases else None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY  # replicas follow the primary's schema through replication


def PinMiddleware(get_response):  # noqa: N802 - Django middleware factory
    """A request's reads may use a replica until it writes (ReplicaRouter)."""
    if iscoroutinefunction(get_response):
        async def middleware(request):
            token = _pin.set(_Pin())
            try:
                return await get_response(request)
            finally:
                _pin.reset(token)

        return markcoroutinefunction(middleware)

    def middleware(request):
        token = _pin.set(_Pin())
        try:
            return get_response(request)
        finally:
            _pin.reset(token)

    return middleware


PinMiddleware.sync_capable = True
PinMiddleware.async_capable = True
