"""The proxy provider as the core serves it and the proxy outpost reads it: one provider of
``/api/v3/outposts/proxy/`` (authentik's ProxyOutpostConfig field names, reference §2.2), its modes, the OIDC
callback the outpost listens on (the provider's redirect URIs), and Gatehouse's ``access`` field.

Both ends import these: the core's model, serializer and access computation (core/providers/proxy/,
core/api/outpost_config.py), the outpost's application configuration and decision (outpost/proxy/apps.py,
pipeline.py). Pure: standard library only.

The ``access`` field (a Gatehouse addition; authentik's core does not send it, and authentik's outpost only
relies on the core's check at /authorize)::

    "access": {
        "default": "deny",                 # "allow" | "deny": the answer for a subject listed nowhere
        "allow_subjects": ["<sub>", ...],  # the OIDC "sub" values (as this provider issues them) allowed
        "deny_subjects": ["<sub>", ...]    # always refused, even with default "allow" (inactive users,
    }                                      # negated bindings); deny wins over allow

* No bindings on the application -> ``{"default": "allow", "deny_subjects": [<inactive users>]}``.
* Bindings -> ``{"default": "deny", "allow_subjects": [<every active user who passes them>]}``.
* The core sends a TRIGGER_UPDATE when a user, group, membership or binding changes, so the new snapshot
  applies at once; and SESSION_END for ended sessions (handled by the session store, not here).

A missing ``access`` key means "decided at /authorize only" (authentik's semantics, so an authentik core
works): any unexpired session issued for this application passes. A present but malformed ``access`` makes
the application's configuration invalid (the outpost refuses it, the handler answers 500: fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocols.forward import CALLBACK_PARAM, CALLBACK_PATH

PROXY = "proxy"  # the outpost reverse-proxies to internal_host
FORWARD_SINGLE = "forward_single"  # forward auth for one host
FORWARD_DOMAIN = "forward_domain"  # forward auth for every host under cookie_domain
MODES = (PROXY, FORWARD_SINGLE, FORWARD_DOMAIN)

CALLBACK_MARKER = f"{CALLBACK_PARAM}=true"

# The fields of one provider in /api/v3/outposts/proxy/ (the core's ProxyOutpostConfigSerializer sends exactly
# these; the outpost's AppConfig.from_json reads no other).
OUTPOST_CONFIG_FIELDS = (
    "pk", "name", "internal_host", "external_host", "internal_host_ssl_validation", "client_id", "client_secret",
    "oidc_configuration", "cookie_secret", "certificate", "skip_path_regex", "basic_auth_enabled",
    "basic_auth_password_attribute", "basic_auth_user_attribute", "mode", "cookie_domain", "access_token_validity",
    "intercept_header_auth", "scopes_to_request", "assigned_application_slug", "assigned_application_name",
    "access",
)

ACCESS_KEYS = ("default", "allow_subjects", "deny_subjects")
ACCESS_DEFAULTS = ("allow", "deny")


def callback_urls(external_host: str) -> tuple[str, str]:
    """The provider's redirect URIs (strict matching): the outpost's callback path, and the external host itself
    with the marker (forward auth sees the callback on the application's own URL). The first is the
    ``redirect_uri`` the outpost sends."""
    base = external_host.rstrip("/")
    return f"{base}{CALLBACK_PATH}?{CALLBACK_MARKER}", f"{base}?{CALLBACK_MARKER}"


class AccessError(ValueError):
    """An ``access`` description that is not the documented shape."""


@dataclass(frozen=True)
class Access:
    default_allow: bool = False
    allow_subjects: frozenset[str] = frozenset()
    deny_subjects: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: Any) -> Access | None:
        """Parse the snapshot's ``access`` (None -> None: decided at /authorize only). Raises AccessError."""
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise AccessError(f"access must be an object, got {type(data).__name__}")
        unknown = set(data) - set(ACCESS_KEYS)
        if unknown:
            raise AccessError(f"access has unknown keys {sorted(unknown)}")
        default = data.get("default", "deny")
        if default not in ACCESS_DEFAULTS:
            raise AccessError(f"access.default must be 'allow' or 'deny', got {default!r}")
        return cls(default == "allow", _subjects(data.get("allow_subjects"), "allow_subjects"),
                   _subjects(data.get("deny_subjects"), "deny_subjects"))

    def to_json(self) -> dict[str, Any]:
        """The core's side: the ``access`` value to send (subjects sorted, so equal answers are equal bytes)."""
        return {"default": "allow" if self.default_allow else "deny", "allow_subjects": sorted(self.allow_subjects),
                "deny_subjects": sorted(self.deny_subjects)}

    def allows(self, sub: str) -> bool:
        if not sub or sub in self.deny_subjects:
            return False
        return self.default_allow or sub in self.allow_subjects


def _subjects(value: Any, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise AccessError(f"access.{name} must be a list of strings")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise AccessError(f"access.{name} must contain only strings")
    return frozenset(items)
