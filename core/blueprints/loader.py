"""Parse a blueprint file: authentik's v1 format (website/docs/customize/blueprints/v1/structure.mdx).

A ``yaml.SafeLoader`` subclass (libyaml's when available) with one constructor per tag, so a file
can build plain data and the tag objects of :mod:`core.blueprints.tags`, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from core.blueprints import tags
from core.blueprints.tags import BlueprintError

STATES = ("present", "created", "must_created", "absent")
ENTRY_KEYS = ("model", "identifiers", "attrs", "state", "id", "conditions", "permissions")
INSTANTIATE_LABEL = "blueprints.goauthentik.io/instantiate"

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BlueprintLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader plus authentik's tags."""


def _where(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _items(loader: yaml.BaseLoader, node: yaml.Node, tag: str, lo: int, hi: int) -> list:
    if not isinstance(node, yaml.SequenceNode):
        raise BlueprintError(f"{_where(node)}: {tag} expects a list, e.g. {tag} [...]")
    items = [loader.construct_object(n, deep=True) for n in node.value]
    if not lo <= len(items) <= hi:
        count = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise BlueprintError(f"{_where(node)}: {tag} takes {count} items, got {len(items)}")
    return items


def _scalar_or_pair(loader, node, tag: str) -> list:
    if isinstance(node, yaml.ScalarNode):
        return [loader.construct_scalar(node)]
    return _items(loader, node, tag, 1, 2)


def _key_of(loader, node):
    if not isinstance(node, yaml.ScalarNode):
        raise BlueprintError(f"{_where(node)}: !KeyOf expects an entry id, e.g. !KeyOf my-flow")
    return tags.KeyOf(loader.construct_scalar(node))


def _env(loader, node):
    return tags.Env(*_scalar_or_pair(loader, node, "!Env"))


def _context(loader, node):
    return tags.Context(*_scalar_or_pair(loader, node, "!Context"))


def _file(loader, node):
    return tags.File(*_scalar_or_pair(loader, node, "!File"))


def _find(loader, node):
    items = _items(loader, node, "!Find", 1, 1000)
    pairs = items[1:]
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise BlueprintError(f"{_where(node)}: !Find: each query must be a [field, value] pair, got {pair!r}")
    return tags.Find(items[0], [tuple(p) for p in pairs])


def _format(loader, node):
    items = _items(loader, node, "!Format", 1, 1000)
    return tags.Format(items[0], items[1:])


def _if(loader, node):
    items = _items(loader, node, "!If", 1, 3)
    if len(items) == 2:
        raise BlueprintError(f"{_where(node)}: !If takes [condition] or [condition, when_true, when_false]")
    return tags.If(*items)


def _condition(loader, node):
    items = _items(loader, node, "!Condition", 2, 1000)
    return tags.Condition(items[0], items[1:])


def _enumerate(loader, node):
    return tags.Enumerate(*_items(loader, node, "!Enumerate", 3, 3))


def _index(loader, node):
    return tags.Index(loader.construct_yaml_int(node) if isinstance(node, yaml.ScalarNode) else -1)


def _value(loader, node):
    return tags.Value(loader.construct_yaml_int(node) if isinstance(node, yaml.ScalarNode) else -1)


def _at_index(loader, node):
    return tags.AtIndex(*_items(loader, node, "!AtIndex", 2, 3))


for _tag, _constructor in {
    "!KeyOf": _key_of, "!Env": _env, "!Context": _context, "!File": _file, "!Find": _find,
    "!Format": _format, "!If": _if, "!Condition": _condition, "!Enumerate": _enumerate,
    "!Index": _index, "!Value": _value, "!AtIndex": _at_index,
}.items():
    BlueprintLoader.add_constructor(_tag, _constructor)


@dataclass(frozen=True)
class Blueprint:
    name: str
    entries: list[dict]
    context: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    version: int = 1

    @property
    def instantiate(self) -> bool:
        return str(self.labels.get(INSTANTIATE_LABEL, "true")).lower() != "false"


def load(text: str | bytes, source: str = "<blueprint>") -> Blueprint:
    """Parse and check the structure; tags stay unresolved until the entries are applied."""
    try:
        doc = yaml.load(text, Loader=BlueprintLoader)  # noqa: S506 - a SafeLoader subclass
    except BlueprintError as exc:
        raise BlueprintError(f"{source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise BlueprintError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise BlueprintError(f"{source}: expected a mapping with version, metadata and entries")
    unknown = set(doc) - {"version", "metadata", "context", "entries"}
    if unknown:
        raise BlueprintError(f"{source}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}; "
                             "expected version, metadata, context, entries")
    if doc.get("version") != 1:
        raise BlueprintError(f"{source}: version {doc.get('version')!r} is not supported; set version: 1")
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BlueprintError(f"{source}: metadata must be a mapping with name and labels")
    name = metadata.get("name", "")
    labels = metadata.get("labels") or {}
    if not isinstance(name, str) or not isinstance(labels, dict):
        raise BlueprintError(f"{source}: metadata.name must be a string and metadata.labels a mapping")
    context = doc.get("context") or {}
    if not isinstance(context, dict):
        raise BlueprintError(f"{source}: context must be a mapping")
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise BlueprintError(f"{source}: entries must be a list of {{model, identifiers, attrs}} mappings")
    for index, entry in enumerate(entries):
        _check_entry(source, index, entry)
    return Blueprint(name=name, entries=entries, context=context, labels=labels)


def _check_entry(source: str, index: int, entry: Any) -> None:
    if not isinstance(entry, dict):
        raise BlueprintError(f"{source}: entry {index}: expected a mapping with model, identifiers, attrs")
    model = entry.get("model")
    where = f"{source}: entry {index} ({model})"
    if model is None:
        raise BlueprintError(f"{source}: entry {index}: model is required, e.g. model: authentik_flows.flow")
    unknown = set(entry) - set(ENTRY_KEYS)
    if unknown:
        raise BlueprintError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                             f"expected {', '.join(ENTRY_KEYS)}")
    state = entry.get("state", "present")
    if state not in STATES:
        raise BlueprintError(f"{where}: state {state!r} is not one of {', '.join(STATES)}")
    for key in ("identifiers", "attrs"):
        if not isinstance(entry.get(key) or {}, (dict, tags.Tag)):
            raise BlueprintError(f"{where}: {key} must be a mapping of field: value")
    if not isinstance(entry.get("conditions") or [], list):
        raise BlueprintError(f"{where}: conditions must be a list")
