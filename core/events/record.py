"""Write audit events: one call, used by the flows, the OIDC provider, the API and the outposts."""

from __future__ import annotations

import logging
from typing import Any

from core.events.audit import current_request
from core.events.models import Event

LOGGER = logging.getLogger("gatehouse.events")


def user_summary(user) -> dict:
    if user is None or not getattr(user, "pk", None):
        return {}
    return {"pk": user.pk, "username": user.username, "email": user.email}


def _clean(value: Any) -> Any:
    """Context must be JSON: models become their str(), secrets are never passed in."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def record(action: str, *, user=None, client_ip: str | None = None, app: str = "", **context: Any) -> Event:
    """Store an event and log it as one structured line. Without ``client_ip``, the address of the request
    being served, if any (callers that know better, such as an outpost's delegated address, pass it)."""
    if client_ip is None:
        request = current_request()
        if request is not None:
            from core.client_ip import client_ip as request_ip

            client_ip = request_ip(request)
    event = Event.objects.create(action=action, user=user_summary(user), client_ip=client_ip or None,
                                 app=app, context=_clean(context))
    LOGGER.info("event", extra={"action": action, "user": event.user.get("username"),
                                "client_ip": client_ip, "app": app})
    return event
