"""What the ``authentik-client`` package (authentik's generated Python client) expects of the API.

The package ships no OpenAPI document, but it is generated from authentik's schema, and the schema is in
its code: each API method's ``_<operation>_serialize`` names the HTTP method, the path, the path and query
parameters and the body; the method itself maps status codes to response models; each pydantic model
lists its fields (required, nullable, type) and its ``to_dict`` names the read-only ones. This module reads
that (``ast`` on the API modules, pydantic's ``model_fields`` on the models) into plain values, so tests can
compare it with our ``/api/v3/schema/`` (tests/api/test_client_schema.py).
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from uuid import UUID


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str  # as in our schema: "/core/users/{id}/"
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body: str | None  # model name
    responses: dict[str, str | None] = field(hash=False, compare=False)  # status -> model name


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # "string", "integer", "number", "boolean", "array", "object", "date-time", "uuid", or a model name
    required: bool
    nullable: bool
    read_only: bool
    items: str | None = None  # the item type of an array
    enum: frozenset | None = None  # the values of an enum (of the items, for an array)


def _serialize_calls(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_") and node.name.endswith("_serialize"):
            yield node.name[1:-len("_serialize")], node


def _public_methods(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
            and not node.name.endswith(("_with_http_info", "_without_preload_content"))}


def _responses(node: ast.FunctionDef | None) -> dict[str, str | None]:
    for stmt in ast.walk(node) if node is not None else ():
        if isinstance(stmt, ast.AnnAssign) and getattr(stmt.target, "id", "") == "_response_types_map":
            return {k.value: v.value for k, v in zip(stmt.value.keys, stmt.value.values, strict=True)}
    return {}


def _operation(operation_id: str, node: ast.FunctionDef, public: ast.FunctionDef | None) -> Operation:
    method = path = body = None
    path_params, query_params = [], []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and getattr(sub.func, "attr", "") == "param_serialize":
            kw = {k.arg: k.value for k in sub.keywords}
            method, path = kw["method"].value, kw["resource_path"].value
        elif isinstance(sub, ast.Call) and getattr(sub.func, "attr", "") == "append" and \
                getattr(sub.func.value, "id", "") == "_query_params":
            query_params.append(sub.args[0].elts[0].value)
        elif isinstance(sub, ast.Subscript) and getattr(sub.value, "id", "") == "_path_params" and \
                isinstance(sub.slice, ast.Constant):
            path_params.append(sub.slice.value)
        elif isinstance(sub, ast.Assign) and getattr(sub.targets[0], "id", "") == "_body_params" and \
                isinstance(sub.value, ast.Name):
            body = sub.value.id
    body_model = None
    if body is not None and public is not None:
        # the body argument's type is named in the public method; its serialize twin has no annotations
        annotation = next(a.annotation for a in public.args.args if a.arg == body)
        body_model = re.sub(r"^Optional\[(.*)\]$", r"\1", ast.unparse(annotation))
    return Operation(operation_id, method, path, tuple(path_params), tuple(sorted(query_params)),
                     body_model, _responses(public))


@cache
def operations() -> dict[str, Operation]:
    """Every operation of the client, by operation id."""
    import authentik_client.api

    found = {}
    for path in sorted(Path(authentik_client.api.__file__).parent.glob("*_api.py")):
        tree = ast.parse(path.read_text())
        public = _public_methods(tree)
        for operation_id, node in _serialize_calls(tree):
            found[operation_id] = _operation(operation_id, node, public.get(operation_id))
    return found


def _model_class(name: str):
    import authentik_client.models

    return getattr(authentik_client.models, name, None)


def _read_only(cls) -> set[str]:
    try:
        source = inspect.getsource(cls.to_dict)
    except (OSError, TypeError, AttributeError):
        return set()
    match = re.search(r"excluded_fields: Set\[str\] = set\(\[(.*?)\]\)", source, re.S)
    return set(re.findall(r'"([^"]+)"', match.group(1))) if match else set()


def type_name(annotation) -> tuple[str, bool, str | None]:
    """(type, nullable, item type) of a pydantic annotation of the generated client."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(annotation))
        if len(args) > 1:  # Union[StrictFloat, StrictInt]
            kinds = {type_name(a)[0] for a in args}
            return ("number" if kinds <= {"number", "integer"} else "|".join(sorted(kinds))), nullable, None
        kind, inner_nullable, items = type_name(args[0])
        return kind, nullable or inner_nullable, items
    if origin in (list, typing.List):  # noqa: UP006 - the generated code uses typing.List
        return "array", False, type_name(typing.get_args(annotation)[0])[0]
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "object", False, None
    if annotation is typing.Any:
        return "any", True, None
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return "boolean", False, None
        if issubclass(annotation, int):
            return "integer", False, None
        if issubclass(annotation, float):
            return "number", False, None
        if issubclass(annotation, enum.Enum):
            return "string", False, None
        if issubclass(annotation, str):
            return "string", False, None
        if issubclass(annotation, datetime):
            return "date-time", False, None
        if issubclass(annotation, date):
            return "date", False, None
        if issubclass(annotation, UUID):
            return "uuid", False, None
        if issubclass(annotation, bytes):
            return "string", False, None
        if hasattr(annotation, "model_fields"):
            if "one_of_schemas" in annotation.model_fields or "actual_instance" in annotation.model_fields:
                return "any", False, None
            return annotation.__name__, False, None
    return "any", False, None


def _enum(annotation) -> frozenset | None:
    """The values of the Enum inside an annotation (Optional[X], List[X], Annotated[X, ...]), if any."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return frozenset(m.value for m in annotation)
    for arg in typing.get_args(annotation):
        found = _enum(arg)
        if found is not None:
            return found
    return None


@cache
def model(name: str) -> dict[str, Field] | None:
    """The fields of the client's model ``name``, or None when there is no such model."""
    cls = _model_class(name)
    if cls is None or not hasattr(cls, "model_fields"):
        return None
    read_only = _read_only(cls)
    fields = {}
    for fname, info in cls.model_fields.items():
        wire = info.alias or fname
        kind, nullable, items = type_name(info.annotation)
        fields[wire] = Field(wire, kind, info.is_required(), nullable, wire in read_only, items,
                             _enum(info.annotation))
    return fields


def enum_values(name: str) -> set[str] | None:
    cls = _model_class(name)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return {m.value for m in cls}
    return None


def version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("authentik-client")
