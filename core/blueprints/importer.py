"""Apply a loaded blueprint's entries to the database (authentik's importer semantics).

- Entries apply in order inside one transaction; any error rolls the whole blueprint back and
  names the entry index, model, identifiers and reason.
- ``identifiers`` find the object (``pk`` matches either the pk or the other identifiers together);
  on creation identifiers and attrs are merged, on update only attrs are written.
- States: ``present`` creates or updates, ``created`` only creates, ``must_created`` fails when the
  object exists, ``absent`` deletes it.
- Field values are compared before writing: an unchanged object is never saved, an unchanged
  many-to-many set never touched, so re-applying a blueprint fires no signals at all.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.hashers import check_password
from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.db import DatabaseError, models, transaction
from django.db.models import Q

from core.blueprints import registry
from core.blueprints.loader import Blueprint
from core.blueprints.tags import BlueprintError, Scope, resolve
from outpost.logs import redact

LOGGER = logging.getLogger("gatehouse.blueprints")

# authentik attribute names that are spelled differently on our models.
ALIASES: dict[str, dict[str, str]] = {
    "authentik_core.application": {"icon": "meta_icon"},
    "authentik_flows.prompt": {"prompt_type": "type"},
}
# authentik attributes of features Gatehouse does not have: accepted with a warning, so authentik's
# own blueprints apply unchanged.
IGNORED: dict[str, set[str]] = {
    "authentik_core.user": {"permissions"},
    "authentik_policies.passwordpolicy": {"check_zxcvbn", "zxcvbn_score_threshold", "check_have_i_been_pwned",
                                          "hibp_allowed_count"},
    "authentik_flows.emailstage": {"host", "port", "username", "password", "use_tls", "use_ssl", "timeout",
                                   "from_address", "recovery_max_attempts", "recovery_cache_timeout"},
    "authentik_flows.identificationstage": {"sources", "captcha_stage", "template"},  # template: authentik's example login-2fa
    "authentik_flows.flow": {"icon"},
}


class EntryError(BlueprintError):
    def __init__(self, index: int, model: Any, identifiers: Any, reason: str):
        self.index, self.model, self.identifiers, self.reason = index, model, identifiers, reason
        super().__init__(f"entry {index} ({model}, identifiers {identifiers!r}): {reason}")


@dataclass
class ApplyResult:
    name: str
    counts: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    models: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return any(self.counts[k] for k in ("created", "updated", "deleted"))

    def summary(self) -> str:
        parts = [f"{self.counts[k]} {k}" for k in ("created", "updated", "deleted", "unchanged", "skipped")
                 if self.counts[k]]
        return ", ".join(parts) or "no entries"


@dataclass
class _Value:
    """One resolved attribute: how to write it and the value in the model's own terms."""

    kind: str  # "plain", "fk", "m2m", "special"
    name: str
    value: Any
    field: Any = None


def find_pk(model_name: str, pairs: list[tuple[Any, Any]]) -> Any:
    """``!Find``: the pk of the first object matching every (field, value) pair, or None."""
    model = registry.get_model(model_name)
    try:
        obj = model._default_manager.filter(**{str(k): v for k, v in pairs}).order_by("pk").first()
    except (FieldError, ValidationError, ValueError, TypeError) as exc:
        raise BlueprintError(f"!Find [{model_name}, {pairs!r}]: {_reason(exc)}") from exc
    return None if obj is None else obj.pk


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"field {k!r}: {' '.join(v)}" for k, v in exc.message_dict.items())
        return " ".join(exc.messages)
    return str(exc).strip() or type(exc).__name__


def _contains(actual: Any, wanted: Any) -> bool:
    """JSON containment as PostgreSQL's ``@>`` (SQLite has no JSON ``__contains``)."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and _contains(actual[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and all(any(_contains(a, w) for a in actual) for w in wanted)
    return actual == wanted


class Importer:
    def __init__(self, blueprint: Blueprint, context: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None):
        self.blueprint = blueprint
        self.context = {**blueprint.context, **(context or {})}
        self.env = env
        self.ids: dict[str, Any] = {}
        self._changed: list[str] = []  # the last _update()'s changed fields

    def apply(self) -> ApplyResult:
        result = ApplyResult(name=self.blueprint.name)
        with transaction.atomic():
            for index, entry in enumerate(self.blueprint.entries):
                self._entry(index, entry, result)
        return result

    # --- one entry ------------------------------------------------------------------------------

    def _scope(self) -> Scope:
        kwargs = {"env": self.env} if self.env is not None else {}
        return Scope(ids=self.ids, context=self.context, find=find_pk, **kwargs)

    def _entry(self, index: int, entry: dict, result: ApplyResult) -> None:
        scope = self._scope()
        model_label, identifiers = entry.get("model"), entry.get("identifiers")
        try:
            model_label = resolve(model_label, scope)
            identifiers = resolve(identifiers or {}, scope)
            if not all(resolve(c, scope) for c in entry.get("conditions") or []):
                result.counts["skipped"] += 1
                self._log(index, model_label, identifiers, "skipped", reason="a condition is false")
                return
            attrs = resolve(entry.get("attrs") or {}, scope)
            if not isinstance(identifiers, dict) or not isinstance(attrs, dict):
                raise BlueprintError("identifiers and attrs must be mappings of field: value")
            if str(model_label).lower() == registry.META_APPLY_BLUEPRINT:
                self._meta_apply(attrs, result)
                return
            model = registry.get_model(model_label)
            label = registry.model_name(model)
            result.models.add(label)
            obj, action = self._apply_model(model, label, entry.get("state", "present"), identifiers, attrs, result)
            self._log(index, model_label, identifiers, action, fields=self._changed if action == "updated" else None)
        except EntryError:
            raise
        except (BlueprintError, ValidationError, FieldError, DatabaseError, ValueError, TypeError) as exc:
            raise EntryError(index, model_label, identifiers, _reason(exc)) from exc
        result.counts[action] += 1
        if entry.get("id") is not None:
            self.ids[entry["id"]] = None if obj is None else obj.pk
        if entry.get("permissions"):
            result.warnings.append(f"entry {index} ({model_label}): permissions are not supported; ignored")

    def _log(self, index: int, model: Any, identifiers: Any, action: str, **fields: Any) -> None:
        """One debug line per entry: what was done and, for an update, which fields changed (names only: values
        can be secrets)."""
        if LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug("blueprint entry", extra={
                "blueprint": self.blueprint.name, "index": index, "model": str(model),
                "identifiers": redact(identifiers) if isinstance(identifiers, dict) else identifiers,
                "action": action, **{k: v for k, v in fields.items() if v is not None}})

    def _meta_apply(self, attrs: dict, result: ApplyResult) -> None:
        """``authentik_blueprints.metaapplyblueprint``: require that another blueprint was applied.

        Gatehouse applies built-in blueprints in file-name order, so this only checks the record.
        """
        from core.blueprints.models import BlueprintInstance

        wanted = attrs.get("identifiers") or {}
        query = Q()
        for key in ("name", "path"):
            if key in wanted:
                query &= Q(**{key: wanted[key]})
        if not query:
            raise BlueprintError("metaapplyblueprint needs attrs.identifiers with name or path")
        if BlueprintInstance.objects.filter(query, status="successful").exists():
            result.counts["unchanged"] += 1
            return
        if attrs.get("required", True):
            raise BlueprintError(f"blueprint {wanted!r} must be applied before this one")
        result.warnings.append(f"blueprint {wanted!r} not applied (not required)")
        result.counts["skipped"] += 1

    def _apply_model(self, model, label: str, state: str, identifiers: dict, attrs: dict,
                     result: ApplyResult) -> tuple[models.Model | None, str]:
        if not identifiers:
            raise BlueprintError("identifiers are required to find the object, e.g. identifiers: {name: ...}")
        idents = {k: self._convert(model, label, k, v, result) for k, v in identifiers.items()}
        if any(v is None or v.kind in ("m2m", "special") for v in idents.values()):
            bad = [k for k, v in idents.items() if v is None or v.kind in ("m2m", "special")]
            raise BlueprintError(f"field(s) {', '.join(bad)} cannot be identifiers; use them in attrs")
        obj = self._lookup(model, idents)
        if state == "absent":
            if obj is None:
                return None, "unchanged"
            obj.delete()
            return None, "deleted"
        if obj is not None and state == "must_created":
            raise BlueprintError(f"state must_created, but the object exists already (pk {obj.pk})")
        if obj is not None and state == "created":
            return obj, "unchanged"
        values = {k: v for k, v in ((k, self._convert(model, label, k, v, result)) for k, v in attrs.items())
                  if v is not None}
        if obj is None:
            return self._create(model, idents, values), "created"
        return obj, ("updated" if self._update(obj, values) else "unchanged")

    # --- fields ---------------------------------------------------------------------------------

    def _convert(self, model, label: str, name: str, value: Any, result: ApplyResult) -> _Value | None:
        name = str(name)
        if name == "pk":
            return _Value("plain", "pk", model._meta.pk.to_python(value) if value is not None else None,
                          model._meta.pk)
        if (label, name) in SPECIAL:
            return _Value("special", name, value)
        name = ALIASES.get(label, {}).get(name, name)
        try:
            f = model._meta.get_field(name)
        except FieldDoesNotExist:
            f = None
        if f is None or not f.concrete and not f.many_to_many or f.auto_created and not f.concrete:
            if name in IGNORED.get(label, ()):
                result.warnings.append(f"{label}.{name}: not supported by Gatehouse; ignored")
                return None
            known = sorted({x.name for x in model._meta.get_fields() if x.concrete or x.many_to_many}
                           | {n for (lbl, n) in SPECIAL if lbl == label} | set(ALIASES.get(label, {})))
            raise BlueprintError(f"field {name!r} is not a field of {label}; known fields: {', '.join(known)}")
        if f.many_to_many:
            if not f.remote_field.through._meta.auto_created:
                through = registry.model_name(f.remote_field.through)
                raise BlueprintError(f"field {name!r} is set through {through} entries, not directly")
            if not isinstance(value, (list, tuple)):
                raise BlueprintError(f"field {name!r} expects a list of primary keys, got {value!r}")
            pk_field = f.related_model._meta.pk
            return _Value("m2m", name, [_pk(pk_field, v, name) for v in value], f)
        if f.is_relation:
            target = f.target_field
            return _Value("fk", name, None if value is None else _pk(target, value, name), f)
        try:
            converted = f.to_python(value)
        except ValidationError as exc:
            raise BlueprintError(f"field {name!r}: {_reason(exc)}") from exc
        return _Value("plain", name, converted, f)

    def _lookup(self, model, idents: dict[str, _Value]) -> models.Model | None:
        pk = idents.get("pk")
        filters, json_filters = {}, {}
        for name, v in idents.items():
            if name == "pk":
                continue
            if isinstance(v.value, (dict, list)) and isinstance(v.field, models.JSONField):
                json_filters[v.field.attname] = v.value
            else:
                filters[v.field.attname] = v.value
        query = Q(**filters) if filters or not json_filters else None
        if pk is not None:
            query = Q(pk=pk.value) | query if filters else Q(pk=pk.value)
        queryset = model._default_manager.filter(query) if query is not None else model._default_manager.all()
        matches = [o for o in queryset.order_by("pk")[:100]
                   if all(_contains(getattr(o, k), w) for k, w in json_filters.items())]
        if len(matches) > 1:
            raise BlueprintError(f"identifiers match {len(matches)} objects (pks "
                                 f"{', '.join(str(o.pk) for o in matches[:5])}); add identifiers to pick one")
        return matches[0] if matches else None

    def _create(self, model, idents: dict[str, _Value], values: dict[str, _Value]) -> models.Model:
        obj = model()
        merged = {**idents, **values}
        for v in merged.values():
            if v.kind in ("plain", "fk"):
                setattr(obj, "pk" if v.name == "pk" else v.field.attname, v.value)
        _specials_before_save(obj, {v.name: v.value for v in merged.values() if v.kind == "special"}, creating=True)
        m2m = {v.name: v.value for v in merged.values() if v.kind == "m2m"}
        _validate(obj, exclude=list(m2m))
        obj.save()
        for name, pks in m2m.items():
            _check_exist(obj._meta.get_field(name).related_model, pks, name)
            getattr(obj, name).set(_with_kept(obj, name, pks))
        _specials_after_save(obj, {v.name: v.value for v in merged.values() if v.kind == "special"})
        return obj

    def _update(self, obj: models.Model, values: dict[str, _Value]) -> bool:
        changed = self._changed = []  # field names, for the entry's debug line
        for v in values.values():
            if v.kind not in ("plain", "fk"):
                continue
            attname = "pk" if v.name == "pk" else v.field.attname
            if getattr(obj, attname) != v.value:
                setattr(obj, attname, v.value)
                changed.append(v.name)
        specials = {v.name: v.value for v in values.values() if v.kind == "special"}
        if _specials_before_save(obj, specials, creating=False):
            changed.extend(sorted(name for name in specials if name != "groups"))
        m2m = {v.name: v.value for v in values.values() if v.kind == "m2m"}
        if changed:
            _validate(obj, exclude=list(m2m))
            obj.save()
        for name, pks in m2m.items():
            manager = getattr(obj, name)
            wanted = _with_kept(obj, name, pks)
            if set(manager.values_list("pk", flat=True)) != set(wanted):
                _check_exist(obj._meta.get_field(name).related_model, pks, name)
                manager.set(wanted)
                changed.append(name)
        if _specials_after_save(obj, specials):
            changed.append("groups")
        return bool(changed)


def _with_kept(obj: models.Model, name: str, pks: list) -> list:
    """``pks`` plus what the model always keeps in that relation (``kept_relations``: a proxy provider's
    default scope mappings, core/providers/proxy/models.py). authentik's serializer adds those after setting
    the listed ones; adding them here too means an unchanged blueprint compares equal and writes nothing."""
    kept = getattr(obj, "kept_relations", None)
    extra = kept(name) if callable(kept) else set()
    return [*pks, *(pk for pk in extra if pk not in set(pks))]


def _pk(pk_field, value: Any, name: str) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if value is None:
        raise BlueprintError(f"field {name!r}: a reference resolved to nothing (a !Find that matched no object?)")
    try:
        return pk_field.to_python(value)
    except ValidationError as exc:
        raise BlueprintError(f"field {name!r}: {value!r} is not a primary key: {_reason(exc)}") from exc


def _check_exist(model, pks: list, name: str) -> None:
    found = set(model._default_manager.filter(pk__in=pks).values_list("pk", flat=True))
    missing = [p for p in pks if p not in found]
    if missing:
        raise BlueprintError(f"field {name!r}: no {registry.model_name(model)} with pk "
                             f"{', '.join(map(str, missing))}")


def _validate(obj: models.Model, exclude: list[str]) -> None:
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise BlueprintError(_reason(exc)) from exc


# --- attributes that are not plain fields (authentik: website/docs/customize/blueprints/v1/models.mdx) ---

SPECIAL = {
    ("authentik_core.user", "password"),
    ("authentik_core.user", "password_hash"),
    ("authentik_core.user", "groups"),
    ("authentik_core.token", "key"),
}


def _specials_before_save(obj: models.Model, specials: dict[str, Any], creating: bool) -> bool:
    """Apply the attributes that need a method call; True when something changed."""
    label = registry.model_name(type(obj))
    changed = False
    if label == "authentik_core.user":
        password, password_hash = specials.get("password"), specials.get("password_hash")
        if password and password_hash:
            raise BlueprintError("password and password_hash are mutually exclusive; set one")
        if password:
            # hashers.check_password, not User.check_password: the latter may re-save the row to
            # upgrade the hash, which would fire post_save on an unchanged blueprint.
            if creating or not check_password(str(password), obj.password):
                obj.set_password(str(password))
                changed = True
        elif password_hash:
            if obj.password != password_hash:
                obj.password = str(password_hash)
                changed = True
        elif creating:
            obj.set_unusable_password()
    elif label == "authentik_core.token":
        from core.accounts.models import hash_key

        key = specials.get("key")
        if key:
            if obj.key_hash != hash_key(str(key)):
                obj.set_key(str(key))
                changed = True
        elif creating:
            obj.set_key()  # a random key, as authentik; readable only by whoever set it
    return changed


def _specials_after_save(obj: models.Model, specials: dict[str, Any]) -> bool:
    if "groups" not in specials or registry.model_name(type(obj)) != "authentik_core.user":
        return False
    pks = _group_pks(specials["groups"])
    if set(obj.groups.values_list("pk", flat=True)) == set(pks):
        return False
    obj.groups.set(pks)
    return True


def _group_pks(values: Any) -> list:
    """A user's ``groups``: a list of group pks (``!KeyOf``/``!Find``) or group names."""
    from core.accounts.models import Group

    if not isinstance(values, (list, tuple)):
        raise BlueprintError(f"field 'groups' expects a list of group pks or names, got {values!r}")
    pk_field = Group._meta.pk
    by_pk, names = [], []
    for value in values:
        if value is None:
            raise BlueprintError("field 'groups': a reference resolved to nothing (a !Find that matched no group?)")
        try:
            by_pk.append(pk_field.to_python(value))
        except ValidationError:
            names.append(str(value))
    found = dict(Group.objects.filter(Q(pk__in=by_pk) | Q(name__in=names)).values_list("pk", "name"))
    pks = [p for p in by_pk if p in found]
    missing = [str(p) for p in by_pk if p not in found]
    by_name = {n: p for p, n in found.items()}
    for n in names:
        if n in by_name:
            pks.append(by_name[n])
        else:
            missing.append(n)
    if missing:
        raise BlueprintError(f"field 'groups': no group {', '.join(repr(m) for m in missing)}; "
                             "create it in an earlier entry")
    return pks
