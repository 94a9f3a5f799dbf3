"""Per-instance outpost health kept in the cache (authentik ``OutpostState``; reference §1.3).

Key per instance: ``goauthentik.io/outposts/state/<outpost uuid hex>/<instance uuid>``, TTL 15 s
(hello every 10 s × 1.5). authentik lists instances with a cache key scan; Django's cache API has no
scan, so an index key ``goauthentik.io/outposts/state/<outpost uuid hex>`` holds the instance ids.
The index update is read-modify-write: two instances saying hello at the same instant on two core
replicas can drop one from the index until its next hello (10 s), which only affects the health list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from django.core.cache import cache

STATE_TTL = 15  # seconds: HELLO interval (10 s) x 1.5
PREFIX = "goauthentik.io/outposts/state"
HELLO_FIELDS = {"version": "version", "buildHash": "build_hash", "golangVersion": "golang_version",
                "opensslEnabled": "openssl_enabled", "opensslVersion": "openssl_version",
                "fipsEnabled": "fips_enabled"}


def _hex(outpost) -> str:
    value = getattr(outpost, "uuid", outpost)
    return value.hex if isinstance(value, UUID) else UUID(str(value)).hex


def index_key(outpost) -> str:
    return f"{PREFIX}/{_hex(outpost)}"


def state_key(outpost, instance_uuid: str) -> str:
    return f"{PREFIX}/{_hex(outpost)}/{instance_uuid}"


def record_state(outpost, instance_uuid: str, args: dict | None = None) -> dict:
    """Store what an outpost instance said in its HELLO (or any message), refreshing its TTL."""
    args = dict(args or {})
    key = state_key(outpost, instance_uuid)
    state = cache.get(key) or {"uid": str(instance_uuid), "args": {}}
    state["last_seen"] = datetime.now(UTC).isoformat()
    state["hostname"] = args.pop("hostname", state.get("hostname", ""))
    for wire, name in HELLO_FIELDS.items():
        if wire in args:
            state[name] = args.pop(wire)
    args.pop("uuid", None)
    state["args"] = {**state.get("args", {}), **args}
    cache.set(key, state, timeout=STATE_TTL)
    index = set(cache.get(index_key(outpost)) or ())
    index.add(str(instance_uuid))
    cache.set(index_key(outpost), sorted(index), timeout=STATE_TTL * 4)
    return state


def delete_state(outpost, instance_uuid: str) -> None:
    """Forget an instance (its websocket closed)."""
    cache.delete(state_key(outpost, instance_uuid))
    index = set(cache.get(index_key(outpost)) or ())
    if str(instance_uuid) in index:
        index.discard(str(instance_uuid))
        cache.set(index_key(outpost), sorted(index), timeout=STATE_TTL * 4)


def list_states(outpost) -> list[dict]:
    """The live instances of an outpost (expired ones drop out with their TTL)."""
    ids = cache.get(index_key(outpost)) or []
    found = cache.get_many([state_key(outpost, i) for i in ids])
    return sorted(found.values(), key=lambda s: s.get("uid", ""))
