"""The outpost <-> core wire schema, imported by both ends (DESIGN.md §2).

Websocket ``/ws/outpost/<outpost uuid>/`` with ``Authorization: Bearer <outpost token>``; JSON text
frames ``{"instruction": N, "args": {...}}`` (authentik's WebsocketMessage, reference §1.3).
Configuration over REST: ``/api/v3/outposts/instances/`` and ``/api/v3/outposts/{proxy,ldap,radius}/``
in authentik's paginated shape (reference §1.4).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HELLO_INTERVAL = 10.0  # seconds between HELLOs (authentik: 10 s)
RECONNECT_CAP = 5.0  # we cap reconnect backoff at 5 s (authentik: 5 min)
UPDATE_DEBOUNCE = 0.2  # changes within this window coalesce into one TRIGGER_UPDATE
MAX_FRAME_BYTES = 64 * 1024

INSTANCES_PATH = "/api/v3/outposts/instances/"
CONFIG_PATHS = {
    "proxy": "/api/v3/outposts/proxy/",
    "ldap": "/api/v3/outposts/ldap/",
    "radius": "/api/v3/outposts/radius/",
}
FLOW_EXECUTOR_PATH = "/api/v3/flows/executor/{slug}/"
OUTPOST_TOKEN_HEADER = "X-authentik-outpost-token"  # noqa: S105 - a header name
REMOTE_IP_HEADER = "X-authentik-remote-ip"


class Instruction(IntEnum):
    ACK = 0
    HELLO = 1
    TRIGGER_UPDATE = 2
    PROVIDER_SPECIFIC = 3
    SESSION_END = 4


class ProtocolError(ValueError):
    """A frame that is not a well-formed message; the receiver drops it."""


@dataclass(frozen=True)
class Message:
    instruction: int
    args: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps({"instruction": int(self.instruction), "args": self.args}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | bytes) -> Message:
        """Parse one frame. Unknown instruction numbers are kept (the receiver ignores them)."""
        if len(text) > MAX_FRAME_BYTES:
            raise ProtocolError(f"frame of {len(text)} bytes exceeds {MAX_FRAME_BYTES}")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"frame is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ProtocolError("frame is not a JSON object")
        instruction = data.get("instruction")
        args = data.get("args") or {}
        if not isinstance(instruction, int) or isinstance(instruction, bool):
            raise ProtocolError(f"instruction must be an integer, got {instruction!r}")
        if not isinstance(args, dict):
            raise ProtocolError("args must be a JSON object")
        return cls(instruction, args)

    @property
    def known(self) -> Instruction | None:
        try:
            return Instruction(self.instruction)
        except ValueError:
            return None


def ack() -> Message:
    return Message(Instruction.ACK, {})


def hello(version: str, instance_uuid: str, hostname: str, **extra: Any) -> Message:
    return Message(Instruction.HELLO, {"version": version, "buildHash": "", "uuid": instance_uuid,
                                       "hostname": hostname, **extra})


def trigger_update() -> Message:
    return Message(Instruction.TRIGGER_UPDATE, {})


def session_end(session_id: str) -> Message:
    """``session_id`` is hash_session_key(core session key): the OIDC ``sid`` claim."""
    return Message(Instruction.SESSION_END, {"type": "event.session.end", "session_id": session_id})


def hash_session_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def websocket_path(outpost_uuid: str) -> str:
    return f"/ws/outpost/{outpost_uuid}/"


def websocket_url(authentik_host: str, outpost_uuid: str, instance_uuid: str, attempt: int = 0) -> str:
    """ws(s) URL under AUTHENTIK_HOST's path, its query merged in (reference §1.2)."""
    parts = urlsplit(authentik_host)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    base = parts.path.rstrip("/")
    query = dict(parse_qsl(parts.query))
    query.update({"instance_uuid": instance_uuid, "attempt": str(attempt)})
    return urlunsplit((scheme, parts.netloc, base + websocket_path(outpost_uuid), urlencode(query), ""))


def reconnect_delay(attempt: int, cap: float = RECONNECT_CAP, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0.5 * d, d] with d = min(cap, 0.5 * 2**attempt)."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    d = min(cap, 0.5 * (2 ** min(attempt, 16)))
    return rng.uniform(d / 2, d)


def next_page(body: dict) -> int:
    """authentik pagination: ``pagination.next`` is the next page number, 0 when done."""
    try:
        return int(body.get("pagination", {}).get("next") or 0)
    except (TypeError, ValueError):
        return 0
