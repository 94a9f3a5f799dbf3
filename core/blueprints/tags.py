"""authentik's blueprint YAML tags (website/docs/customize/blueprints/v1/tags.mdx).

The loader turns each tag into a small object; the importer resolves it later, entry by entry,
against a :class:`Scope` (ids of earlier entries, the blueprint context, the environment, database
look-ups and the ``!Enumerate`` stack). Nothing here builds arbitrary Python objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any


class BlueprintError(Exception):
    """A blueprint that cannot be loaded or applied; the message names the entry, model and field."""


class TagError(BlueprintError):
    """A tag that cannot be resolved (the importer adds the entry it was in)."""


_MISSING = object()


@dataclass(frozen=True)
class Scope:
    ids: Mapping[str, Any]
    context: Mapping[str, Any]
    find: Callable[[str, list[tuple[Any, Any]]], Any]
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    stack: tuple[tuple[Any, Any] | None, ...] = ()


def resolve(value: Any, scope: Scope) -> Any:
    """``value`` with every tag inside it (dicts and lists included) replaced by its result."""
    if isinstance(value, Tag):
        return value.resolve(scope)
    if isinstance(value, dict):
        return {resolve(k, scope): resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    return value


class Tag:
    name = "!Tag"

    def resolve(self, scope: Scope) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class KeyOf(Tag):
    """``!KeyOf id``: the primary key of the object an earlier entry with that ``id`` produced."""

    key: Any
    name = "!KeyOf"

    def resolve(self, scope: Scope) -> Any:
        key = resolve(self.key, scope)
        if key not in scope.ids:
            known = ", ".join(sorted(map(str, scope.ids))) or "none"
            raise TagError(f"!KeyOf {key!r}: no earlier entry has id {key!r} (ids so far: {known}); "
                           "give the referenced entry that id and put it before this one")
        return scope.ids[key]


@dataclass
class Env(Tag):
    """``!Env NAME`` or ``!Env [NAME, default]``: an environment variable (unset or empty -> default)."""

    key: Any
    default: Any = None
    name = "!Env"

    def resolve(self, scope: Scope) -> Any:
        return scope.env.get(str(resolve(self.key, scope))) or resolve(self.default, scope)


@dataclass
class Context(Tag):
    """``!Context key`` or ``!Context [key, default]``; ``a.b.0`` walks nested maps and lists."""

    key: Any
    default: Any = _MISSING
    name = "!Context"

    def resolve(self, scope: Scope) -> Any:
        key = resolve(self.key, scope)
        if key in scope.context:
            return scope.context[key]
        node: Any = scope.context
        for part in str(key).split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                if self.default is _MISSING:
                    return None  # authentik resolves a missing key without a default to None
                return resolve(self.default, scope)
        return node


@dataclass
class Find(Tag):
    """``!Find [model, [field, value], ...]``: pk of the first matching object, or None."""

    model: Any
    pairs: list
    name = "!Find"

    def resolve(self, scope: Scope) -> Any:
        model = resolve(self.model, scope)
        pairs = [(resolve(k, scope), resolve(v, scope)) for k, v in self.pairs]
        return scope.find(model, pairs)


@dataclass
class Format(Tag):
    """``!Format [fmt, args...]``: Python %-formatting."""

    fmt: Any
    args: list
    name = "!Format"

    def resolve(self, scope: Scope) -> Any:
        fmt = resolve(self.fmt, scope)
        args = tuple(resolve(a, scope) for a in self.args)
        try:
            return str(fmt) % args
        except (TypeError, ValueError, KeyError) as exc:
            raise TagError(f"!Format {fmt!r} with {list(args)!r}: {exc}; use one %s per argument") from exc


@dataclass
class If(Tag):
    """``!If [condition]`` or ``!If [condition, when_true, when_false]``."""

    condition: Any
    when_true: Any = True
    when_false: Any = False
    name = "!If"

    def resolve(self, scope: Scope) -> Any:
        if resolve(self.condition, scope):
            return resolve(self.when_true, scope)
        return resolve(self.when_false, scope)


_MODES: dict[str, Callable[[list[bool]], bool]] = {
    "AND": all,
    "NAND": lambda args: not all(args),
    "OR": any,
    "NOR": lambda args: not any(args),
    "XOR": lambda args: reduce(xor, args),
    "XNOR": lambda args: not reduce(xor, args),
}


@dataclass
class Condition(Tag):
    """``!Condition [MODE, args...]``: the booleans of ``args`` merged by AND, NAND, OR, NOR, XOR or XNOR."""

    mode: Any
    args: list
    name = "!Condition"

    def resolve(self, scope: Scope) -> Any:
        mode = str(resolve(self.mode, scope)).upper()
        if mode not in _MODES:
            raise TagError(f"!Condition mode {mode!r}: expected one of {', '.join(_MODES)}")
        return _MODES[mode]([bool(resolve(a, scope)) for a in self.args])


@dataclass
class Enumerate(Tag):
    """``!Enumerate [iterable, SEQ|MAP, item]``; ``!Index n`` / ``!Value n`` inside ``item``."""

    iterable: Any
    output: Any
    item: Any
    name = "!Enumerate"

    def resolve(self, scope: Scope) -> Any:
        # authentik counts this tag as depth 0 already while resolving its iterable (tags.mdx).
        iterable = resolve(self.iterable, replace(scope, stack=(*scope.stack, None)))
        output = str(resolve(self.output, scope)).upper()
        if output not in ("SEQ", "MAP"):
            raise TagError(f"!Enumerate output {output!r}: expected SEQ or MAP")
        if isinstance(iterable, Mapping):
            pairs = list(iterable.items())
        elif isinstance(iterable, (list, tuple, str)):
            pairs = list(enumerate(iterable))
        else:
            raise TagError(f"!Enumerate over {iterable!r}: expected a list, a map or a string")
        out_seq, out_map = [], {}
        for pair in pairs:
            value = resolve(self.item, replace(scope, stack=(*scope.stack, pair)))
            if output == "SEQ":
                out_seq.append(value)
                continue
            if not (isinstance(value, list) and len(value) == 2):
                raise TagError("!Enumerate with MAP: the item must be a [key, value] pair")
            out_map[value[0]] = value[1]
        return out_seq if output == "SEQ" else out_map


@dataclass
class _StackRef(Tag):
    depth: Any
    position = 0

    def resolve(self, scope: Scope) -> Any:
        depth = resolve(self.depth, scope)
        if not isinstance(depth, int) or depth < 0 or depth >= len(scope.stack):
            raise TagError(f"{self.name} {depth!r}: only valid inside !Enumerate, with 0 <= depth < "
                           f"{len(scope.stack)} (the number of enclosing !Enumerate tags)")
        frame = scope.stack[-1 - depth]
        if frame is None:
            raise TagError(f"{self.name} {depth}: an !Enumerate's iterable cannot refer to that !Enumerate "
                           "itself; use depth 1 or more")
        return frame[self.position]


class Index(_StackRef):
    name = "!Index"
    position = 0


class Value(_StackRef):
    name = "!Value"
    position = 1


@dataclass
class AtIndex(Tag):
    """``!AtIndex [sequence_or_map, index, default?]``."""

    obj: Any
    index: Any
    default: Any = _MISSING
    name = "!AtIndex"

    def resolve(self, scope: Scope) -> Any:
        obj, index = resolve(self.obj, scope), resolve(self.index, scope)
        try:
            return obj[index]
        except (KeyError, IndexError, TypeError) as exc:
            if self.default is _MISSING:
                raise TagError(f"!AtIndex {index!r}: not in {obj!r}; add a default as a third item") from exc
            return resolve(self.default, scope)


@dataclass
class File(Tag):
    """``!File path`` or ``!File [path, default]``: a file's text (e.g. a mounted secret)."""

    path: Any
    default: Any = None
    name = "!File"

    def resolve(self, scope: Scope) -> Any:
        path = Path(str(resolve(self.path, scope)))
        try:
            return path.read_text()
        except OSError:
            return resolve(self.default, scope)
