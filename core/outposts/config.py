"""An outpost's ``config`` (authentik's "Advanced settings"): the keys it may have, their types, and one check used
by the API (core/outposts/api.py) and the admin's YAML form (core/outposts/admin.py), so both refuse the same
values with the same messages, each naming its key.

Gatehouse reads ``log_level``, ``authentik_host*``, ``refresh_interval`` and ``kubernetes_replicas`` (the
instances expected, on the health list). authentik's other keys configure the Docker and Kubernetes deployments
it makes; Gatehouse deploys no outposts, but it keeps them (an outpost exported from authentik imports as is).
"""

from __future__ import annotations

from core import durations
from core.outposts.models import default_outpost_config

LOG_LEVELS = {"trace", "debug", "info", "warning", "error"}
URL_KEYS = ("authentik_host", "authentik_host_browser")
NULL = type(None)

# key -> (accepted Python types, what to write): authentik's OutpostConfig dataclass
# (authentik/outposts/models.py), default_outpost_config's keys first.
KNOWN_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "log_level": ((str,), f"one of {', '.join(sorted(LOG_LEVELS))}"),
    "authentik_host": ((str,), "an http(s) URL such as https://auth.example.com/, or empty"),
    "authentik_host_insecure": ((bool,), "true or false"),
    "authentik_host_browser": ((str,), "an http(s) URL such as https://auth.example.com/, or empty"),
    "refresh_interval": ((str,), "a duration such as minutes=5"),
    "object_naming_template": ((str,), "text such as ak-outpost-%(name)s"),
    "container_image": ((str, NULL), "an image name, or null"),
    "docker_network": ((str, NULL), "a network name, or null"),
    "docker_map_ports": ((bool,), "true or false"),
    "docker_labels": ((dict, NULL), "a mapping of labels, or null"),
    "kubernetes_replicas": ((int,), "a whole number such as 1"),
    "kubernetes_namespace": ((str,), "a namespace name"),
    "kubernetes_ingress_annotations": ((dict,), "a mapping"),
    "kubernetes_ingress_secret_name": ((str,), "a secret name"),
    "kubernetes_ingress_class_name": ((str, NULL), "a class name, or null"),
    "kubernetes_httproute_annotations": ((dict,), "a mapping"),
    "kubernetes_httproute_parent_refs": ((list,), "a list"),
    "kubernetes_service_type": ((str,), "a service type such as ClusterIP"),
    "kubernetes_disabled_components": ((list,), "a list of component names"),
    "kubernetes_image_pull_secrets": ((list,), "a list of secret names"),
    "kubernetes_json_patches": ((dict, NULL), "a mapping of patches, or null"),
}


def _type_name(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "text", dict: "a mapping",
            list: "a list", NULL: "null"}.get(type(value), type(value).__name__)


def config_problems(config: dict, *, unknown_keys: bool = False) -> dict[str, str]:
    """``{key: what is wrong and what to write}`` for ``config`` merged over the defaults; empty when it is fine.
    ``unknown_keys``: a key neither Gatehouse nor authentik knows is a problem too (the admin's form: a typo
    such as ``log_levl`` would otherwise be kept and silently do nothing). The API keeps them, as authentik does."""
    merged = {**default_outpost_config(), **config}
    problems: dict[str, str] = {}
    for key, value in merged.items():
        if key not in KNOWN_KEYS:
            if unknown_keys:
                problems[key] = "unknown key; remove it or fix its spelling (known keys: " \
                                f"{', '.join(KNOWN_KEYS)})"
            continue
        types, wanted = KNOWN_KEYS[key]
        # bool is an int in Python: kubernetes_replicas: true is not a number
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            problems[key] = f"{value!r} is {_type_name(value)}; write {wanted}"
    if "refresh_interval" not in problems:
        try:
            durations.parse(str(merged["refresh_interval"]))
        except ValueError as exc:
            problems["refresh_interval"] = str(exc)
    if "log_level" not in problems and str(merged["log_level"]).lower() not in LOG_LEVELS:
        problems["log_level"] = f"{merged['log_level']!r} must be one of {', '.join(sorted(LOG_LEVELS))}"
    for key in URL_KEYS:
        url = merged.get(key) or ""
        if key not in problems and url and not url.startswith(("http://", "https://", "unix://")):
            problems[key] = f"{url!r} must be an http(s) URL such as https://auth.example.com/"
    if "kubernetes_replicas" not in problems and merged.get("kubernetes_replicas", 1) < 0:
        problems["kubernetes_replicas"] = f"{merged['kubernetes_replicas']} must be 0 or more"
    return problems


def clean_config(config, *, unknown_keys: bool = False) -> tuple[dict, dict[str, str]]:
    """(the config merged over the defaults, problems by key) for what the API or the admin received."""
    if not isinstance(config, dict):
        return {}, {"config": f"{_type_name(config)} is not a mapping of settings; write key: value lines"}
    return {**default_outpost_config(), **config}, config_problems(config, unknown_keys=unknown_keys)
