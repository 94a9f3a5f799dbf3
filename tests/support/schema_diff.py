"""Differences between our OpenAPI schema and what ``authentik-client`` expects (tests/support/client_spec.py).

For every operation we serve (matched by operationId, which drf-spectacular derives as authentik's does):
the method and path, the path parameters, the query parameters, the request body's fields, and the
response model's fields: each field the client requires must be in our answer, required, of the same
type, nullable only where the client allows null, read-only where the client's is. ``differences()``
returns one line per difference.
"""

from __future__ import annotations

from tests.support import client_spec

PREFIX = "/api/v3"
# Our extensions (no operation in authentik's client): the one-call outpost authentication
# (docs/DESIGN.md "Outpost authentication"), the LDAP unbind flow call and RADIUS accounting/CHAP.
OURS_ONLY = {
    "outposts_ldap_authenticate_create", "outposts_ldap_unbind_create", "outposts_radius_authenticate_create",
    "outposts_radius_authenticate_challenge_create", "outposts_radius_accounting_create",
}
# Query parameters the client sends that we accept but do not describe are still differences; these are
# the ones we serve and authentik does not (ours only, harmless to a client that never sends them).
SUCCESS = ("200", "201", "204")


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node or ("allOf" in node and len(node["allOf"]) == 1):
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        else:
            node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    return node


def _ref_name(node: dict) -> str | None:
    if "$ref" in node:
        return node["$ref"].rsplit("/", 1)[1]
    if "allOf" in node and len(node["allOf"]) == 1 and "$ref" in node["allOf"][0]:
        return node["allOf"][0]["$ref"].rsplit("/", 1)[1]
    return None


def our_type(schema: dict, node: dict) -> tuple[str, str | None]:
    """(type, item type) of one of our property schemas, in client_spec's vocabulary."""
    name = _ref_name(node)
    if name is not None:
        target = schema["components"]["schemas"][name]
        if "enum" in target or target.get("type") == "string":
            return "string", None
        return name, None
    if "oneOf" in node or "anyOf" in node or not node.get("type"):
        return "any", None
    kind = node["type"]
    if kind == "string" and node.get("format") in ("date-time", "date", "uuid"):
        return node["format"], None
    if kind == "array":
        return "array", our_type(schema, node.get("items", {}))[0]
    return kind, None


def _enum_values(schema: dict, node: dict) -> set | None:
    """Our enum's values for a property (through $ref/allOf/oneOf and array items); None without one."""
    if node.get("type") == "array":
        return _enum_values(schema, node.get("items", {}))
    for part in [node, *node.get("allOf", []), *node.get("oneOf", [])]:
        target = _resolve(schema, part)
        if "enum" in target:
            return {v for v in target["enum"] if v not in (None, "")}
    return None


def _compatible(client: str, ours: str) -> bool:
    if client == ours or client == "any":
        return True
    # a nested model: names may differ (drf-spectacular names components after our serializers)
    return client[:1].isupper() and ours[:1].isupper()


def _request_fields(schema: dict, node: dict) -> dict:
    """Properties of a request body schema, or of a JSON body (``{name: {required, ...}}``)."""
    return _resolve(schema, node) if node else {}


def compare_model(schema: dict, where: str, client_name: str, ours: dict, response: bool,
                  seen: set) -> list[str]:
    """Differences between the client's model ``client_name`` and our resolved schema ``ours``."""
    if (client_name, id(ours)) in seen:
        return []
    seen.add((client_name, id(ours)))
    fields = client_spec.model(client_name)
    if fields is None:
        return []
    found = []
    props = ours.get("properties", {})
    required = set(ours.get("required", ()))
    for name, f in fields.items():
        if f.enum is not None and name in props:
            ours_enum = _enum_values(schema, props[name])
            if ours_enum is not None and ours_enum - f.enum:
                found.append(f"{where} {client_name}.{name}: values {sorted(ours_enum - f.enum)} are not in the "
                             f"client's enum")
        if response and not f.required:
            continue
        if not response and f.read_only:
            continue
        if not response and not f.required:
            if name not in props:
                found.append(f"{where} {client_name}.{name}: the client may send it, we ignore it")
            continue
        if name not in props:
            found.append(f"{where} {client_name}.{name}: missing ({f.type}{', required' if f.required else ''})")
            continue
        prop = props[name]
        if name not in required:
            found.append(f"{where} {client_name}.{name}: the client requires it, ours is optional")
        kind, items = our_type(schema, prop)
        if not _compatible(f.type, kind):
            found.append(f"{where} {client_name}.{name}: type {kind}, the client expects {f.type}")
        elif f.type == "array" and f.items and items and not _compatible(f.items, items):
            found.append(f"{where} {client_name}.{name}: items {items}, the client expects {f.items}")
        if response:
            nullable = prop.get("nullable", False) or _resolve(schema, prop).get("nullable", False)
            if nullable and not f.nullable:
                found.append(f"{where} {client_name}.{name}: ours may be null, the client's may not")
        nested = _ref_name(prop) or (_ref_name(prop.get("items", {})) if kind == "array" else None)
        client_nested = f.items if f.type == "array" else f.type
        if nested and client_nested and client_nested[:1].isupper():
            target = schema["components"]["schemas"][nested]
            if "properties" in target:
                found += compare_model(schema, where, client_nested, target, response, seen)
    return found


def _response_model(op: client_spec.Operation) -> tuple[str | None, str | None]:
    for status in SUCCESS:
        if status in op.responses:
            return status, op.responses[status]
    return None, None


def _our_response(schema: dict, operation: dict, status: str) -> dict | None:
    answer = operation.get("responses", {}).get(status)
    if answer is None:
        return None
    content = answer.get("content", {}).get("application/json", {}).get("schema")
    return _resolve(schema, content) if content else {}


def differences(schema: dict) -> list[str]:
    ops = client_spec.operations()
    found: list[str] = []
    for path, methods in sorted(schema["paths"].items()):
        if not path.startswith(PREFIX) or path.startswith(PREFIX + "/schema/"):
            continue
        for method, operation in methods.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            op_id = operation.get("operationId", "")
            where = f"{method.upper()} {path} ({op_id})"
            if op_id in OURS_ONLY:
                continue
            op = ops.get(op_id)
            if op is None:
                found.append(f"{where}: the client has no such operation")
                continue
            if op.method != method.upper() or PREFIX + op.path != path:
                found.append(f"{where}: the client's is {op.method} {op.path}")
            params = operation.get("parameters", [])
            ours_query = {p["name"] for p in params if p["in"] == "query"}
            ours_path = {p["name"] for p in params if p["in"] == "path"}
            if ours_path != set(op.path_params):
                found.append(f"{where}: path parameters {sorted(ours_path)}, the client's {sorted(op.path_params)}")
            if missing := set(op.query_params) - ours_query:
                found.append(f"{where}: query parameters the client has and we do not describe: {sorted(missing)}")
            if extra := ours_query - set(op.query_params):
                found.append(f"{where}: query parameters we describe and the client has not: {sorted(extra)}")
            if op.body:
                body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                ours = _resolve(schema, body["schema"]) if body.get("schema") else None
                if ours is None:
                    found.append(f"{where}: the client sends a {op.body}, we take no JSON body")
                else:
                    found += compare_model(schema, where + " body", op.body, ours, False, set())
            status, name = _response_model(op)
            if status is None:
                continue
            ours = _our_response(schema, operation, status)
            if ours is None:
                documented = sorted(s for s in operation.get("responses", {}) if s.startswith("2"))
                found.append(f"{where}: the client expects {status}, ours documents {documented}")
                continue
            if name is None:
                continue
            if not ours:
                found.append(f"{where}: the client expects a {name}, ours documents no JSON body")
                continue
            if name.startswith("Paginated") and name.endswith("List"):
                results = ours.get("properties", {}).get("results", {})
                item = _resolve(schema, results.get("items", {}))
                found += compare_model(schema, where, name[len("Paginated"):-len("List")], item, True, set())
            elif client_spec.model(name) is None:  # a list of models (outpost health) or a plain value
                items = ours.get("items")
                inner = name.removeprefix("List[").removesuffix("]")
                if items is not None and inner != name:
                    found += compare_model(schema, where, inner, _resolve(schema, items), True, set())
            else:
                found += compare_model(schema, where, name, ours, True, set())
    return found
