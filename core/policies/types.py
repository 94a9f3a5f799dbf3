"""What a policy is asked (PolicyRequest) and what it answers (PolicyResult): plain values only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HttpContext:
    """The parts of the HTTP request a policy may look at (no request object crosses into policies)."""

    client_ip: str = ""
    user_agent: str = ""
    host: str = ""
    path: str = ""
    query: dict = field(default_factory=dict)


@dataclass
class PolicyRequest:
    """authentik's ``request`` name in expressions: ``request.user``, ``.http_request``, ``.obj``, ``.context``."""

    user: Any = None
    http_request: HttpContext | None = None
    obj: Any = None
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyResult:
    passing: bool
    messages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.passing
