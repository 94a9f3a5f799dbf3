"""The outpost <-> core wire schema, imported by both ends (DESIGN.md §2).

Websocket ``/ws/outpost/<outpost uuid>/`` with ``Authorization: Bearer <outpost token>``; JSON text
frames ``{"instruction": N, "args": {...}}`` (authentik's WebsocketMessage, reference §1.3).
Configuration over REST: ``/api/v3/outposts/instances/`` and ``/api/v3/outposts/{proxy,ldap,radius}/``
in authentik's paginated shape (reference §1.4).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
from dataclasses import dataclass, field
from enum import Enum, IntEnum
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


# --- the outpost -> core authentication call (LDAP bind, RADIUS Access-Request) -------------------------
# ``POST AUTHENTICATE_PATHS[kind].format(pk=<provider pk>)`` with ``Authorization: Bearer <outpost token>``
# and an AuthRequest; the core runs the provider's bind flow and the application access check in that one
# request and answers 200 with an AuthAnswer, also when the login failed (non-200 only for a bad call).

AUTHENTICATE_PATHS = {
    "ldap": "/api/v3/outposts/ldap/{pk}/authenticate/",
    "radius": "/api/v3/outposts/radius/{pk}/authenticate/",
}
# LDAP unbind of a connection whose bind opened a core session: {"session_id", "remote_ip"} -> {"ended", "reason"};
# the core runs the provider's unbind flow on that session (core/providers/ldap/api.py ``unbind``)
LDAP_UNBIND_PATH = "/api/v3/outposts/ldap/{pk}/unbind/"
# RADIUS Accounting-Request -> an event (``radius_accounting`` record, core/providers/radius/api.py); 201 once stored
RADIUS_ACCOUNTING_PATH = "/api/v3/outposts/radius/{pk}/accounting/"
RADIUS_ACCOUNTING_EVENT = "custom_radius_accounting"
# RADIUS CHAP / MS-CHAPv2 proof -> the core checks it against the user's network password (an app password)
RADIUS_CHALLENGE_PATH = "/api/v3/outposts/radius/{pk}/authenticate_challenge/"
MAX_USERNAME_CHARS = 1024  # far above any real name (the identification stage keeps 255); refuses junk early
MAX_PASSWORD_CHARS = 4096  # a password (with ";code") longer than this is a bad call, not a login attempt
_MFA_SEPARATOR = ";"


class AuthResult(str, Enum):  # noqa: UP042 - str + Enum so the values compare and serialise as plain strings
    """What the core decided. ``access_denied`` is a decision (the flow's or the application's policies, the
    flow's deny stage, an inactive user at the login stage); ``flow_error`` means the flow could not be run to
    a decision (no bind flow, a stage LDAP/RADIUS cannot answer, an exception in the core, the core away)."""

    OK = "ok"
    INVALID_CREDENTIALS = "invalid_credentials"
    ACCESS_DENIED = "access_denied"
    MFA_REQUIRED = "mfa_required"
    FLOW_ERROR = "flow_error"

    def __str__(self) -> str:
        return self.value


def _want(data: dict, key: str, kind: type | tuple[type, ...], what: str, *, nullable: bool = False):
    """``data[key]`` when it has the JSON type ``what``; else ProtocolError naming the field and the value."""
    if key not in data:
        raise ProtocolError(f"{key!r} is missing: it must be {what}")
    value = data[key]
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise ProtocolError(f"{key!r} must be {what}{' or null' if nullable else ''}, "
                            f"got {type(value).__name__} {_short(value)}")
    return value


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(data: Any, what: str) -> dict:
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class AuthRequest:
    """The outpost's question. ``password`` is what the client sent (``secret;123456`` included: the core
    splits it with ``split_mfa`` and the provider's ``mfa_support``); ``remote_ip`` the end client's address,
    trusted because an authenticated outpost sends it (it keys the login rate limit and the events)."""

    username: str
    password: str = field(repr=False)
    remote_ip: str

    def __post_init__(self) -> None:
        for name, value in (("username", self.username), ("password", self.password),
                            ("remote_ip", self.remote_ip)):
            if not isinstance(value, str):
                raise ProtocolError(f"{name!r} must be a string, got {type(value).__name__}")
        if not self.username.strip():
            raise ProtocolError("'username' is empty: send the name the client bound with")
        if len(self.username) > MAX_USERNAME_CHARS:
            raise ProtocolError(f"'username' is {len(self.username)} characters, over {MAX_USERNAME_CHARS}")
        if len(self.password) > MAX_PASSWORD_CHARS:  # the length only: never a part of the value
            raise ProtocolError(f"'password' is {len(self.password)} characters, over {MAX_PASSWORD_CHARS}")
        if "\x00" in self.username or "\x00" in self.password:
            raise ProtocolError("'username' and 'password' may not contain NUL characters")
        try:
            ipaddress.ip_address(self.remote_ip)
        except ValueError:
            raise ProtocolError(f"'remote_ip' must be the client's IPv4 or IPv6 address, got "
                                f"{_short(self.remote_ip)}") from None

    def __repr__(self) -> str:  # never the password, wherever a request object ends up (a log, a traceback)
        return f"AuthRequest(username={self.username!r}, password=<{len(self.password)} chars>, " \
               f"remote_ip={self.remote_ip!r})"

    def to_json(self) -> dict:
        return {"username": self.username, "password": self.password, "remote_ip": self.remote_ip}

    @classmethod
    def from_json(cls, data: Any) -> AuthRequest:
        """From the decoded body (or its text). ProtocolError names the bad field."""
        data = _object(data, "the authenticate request")
        return cls(username=_want(data, "username", str, "a string"),
                   password=_want(data, "password", str, "a string"),
                   remote_ip=_want(data, "remote_ip", str, "a string (an IP address)"))


class _Fields:
    """``obj["name"]`` and ``obj.get("name")`` beside ``obj.name``: the JSON shape reads the same either way."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.__dataclass_fields__ else default  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AuthGroup(_Fields):
    pk: str
    name: str

    def to_json(self) -> dict:
        return {"pk": self.pk, "name": self.name}

    @classmethod
    def from_json(cls, data: Any) -> AuthGroup:
        data = _object(data, "a group")
        return cls(pk=_want(data, "pk", str, "a string"), name=_want(data, "name", str, "a string"))


@dataclass(frozen=True)
class AuthUser(_Fields):
    """The authenticated user as the core sees them now. ``groups``: direct memberships (as authentik's LDAP
    ``memberOf``); ``attributes``: the user's own (read-only by convention)."""

    pk: int
    uid: str
    username: str
    name: str
    email: str
    is_active: bool
    is_superuser: bool
    groups: tuple[AuthGroup, ...] = ()
    attributes: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"pk": self.pk, "uid": self.uid, "username": self.username, "name": self.name, "email": self.email,
                "is_active": self.is_active, "is_superuser": self.is_superuser,
                "groups": [g.to_json() for g in self.groups], "attributes": dict(self.attributes)}

    @classmethod
    def from_json(cls, data: Any) -> AuthUser:
        data = _object(data, "'user'")
        groups = _want(data, "groups", list, "a list of {pk, name} objects")
        return cls(pk=_want(data, "pk", int, "an integer"), uid=_want(data, "uid", str, "a string"),
                   username=_want(data, "username", str, "a string"), name=_want(data, "name", str, "a string"),
                   email=_want(data, "email", str, "a string"),
                   is_active=_want(data, "is_active", bool, "true or false"),
                   is_superuser=_want(data, "is_superuser", bool, "true or false"),
                   groups=tuple(AuthGroup.from_json(g) for g in groups),
                   attributes=_want(data, "attributes", dict, "an object"))


@dataclass(frozen=True)
class AuthAnswer:
    """The core's answer. ``session_id`` is sha256 of the core session the login opened (``hash_session_key``,
    what SESSION_END carries), so the outpost can drop what it cached for that bind when the session ends.
    ``reason`` is for logs: it never holds a secret."""

    result: AuthResult
    reason: str = ""
    user: AuthUser | None = None
    session_id: str | None = None
    has_search_permission: bool = False
    reply_attributes: tuple = ()  # RADIUS reply attributes (filled by the RADIUS work; empty until then)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "result", AuthResult(self.result))
        except ValueError:
            raise ProtocolError(f"'result' must be one of {[r.value for r in AuthResult]}, "
                                f"got {_short(self.result)}") from None
        if self.result is AuthResult.OK and (self.user is None or not self.session_id):
            raise ProtocolError("a result 'ok' must name the user and the session_id")

    @property
    def ok(self) -> bool:
        return self.result is AuthResult.OK

    def to_json(self) -> dict:
        return {"result": self.result.value, "reason": self.reason,
                "user": self.user.to_json() if self.user is not None else None, "session_id": self.session_id,
                "has_search_permission": self.has_search_permission,
                "reply_attributes": list(self.reply_attributes)}

    @classmethod
    def from_json(cls, data: Any) -> AuthAnswer:
        """From the decoded body (or its text). ProtocolError names the bad field; unknown fields are ignored
        (the core may add some)."""
        data = _object(data, "the authenticate answer")
        user = _want(data, "user", dict, "an object", nullable=True)
        return cls(result=_want(data, "result", str, "a string"),
                   reason=_want(data, "reason", str, "a string"),
                   user=AuthUser.from_json(user) if user is not None else None,
                   session_id=_want(data, "session_id", str, "a string", nullable=True),
                   has_search_permission=_want(data, "has_search_permission", bool, "true or false"),
                   reply_attributes=tuple(_want(data, "reply_attributes", list, "a list")))


def split_mfa(password: str, mfa_support: bool) -> tuple[str, str | None]:
    """(password, code) exactly as authentik's ``SetSecrets`` (reference §1.7, solvers_mfa.go).

    - ``mfa_support`` off: the code answer is the whole password too (authentik: so a flow whose only
      factor is an authenticator stage can be answered). The core then offers it to an authenticator stage
      only when no password stage consumed it (core/flows/outpost_login.py says why).
    - ``mfa_support`` on: when the text after the LAST ``;`` is 6 digits or 8 ASCII letters/digits (and the
      password does not end with ``;``), that text is the code and the part before it the password;
      otherwise the whole text is the password and there is no code.
    """
    if not mfa_support:
        return password, password
    head, sep, tail = password.rpartition(_MFA_SEPARATOR)
    if not sep or not tail:
        return password, None
    if (len(tail) == 6 and tail.isascii() and tail.isdigit()) or (len(tail) == 8 and tail.isascii()
                                                                     and tail.isalnum()):
        return head, tail
    return password, None
