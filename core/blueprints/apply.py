"""Apply blueprint files and record each as a BlueprintInstance (name, path, content hash, status).

At start-up every built-in blueprint (``core/blueprints/default/*.yaml``, sorted) and then every
``*.yaml`` under ``AUTHENTIK_BLUEPRINTS_DIR`` is applied, except files whose content hash equals the
hash recorded at their last successful application: an unchanged start reads the files and makes
one query. (As in authentik, a changed ``!Env`` value alone does not re-apply a file; ``ak
apply_blueprint`` always applies.)
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from core.blueprints.importer import ApplyResult, Importer
from core.blueprints.loader import load
from core.blueprints.models import BlueprintInstance
from core.blueprints.tags import BlueprintError

LOGGER = logging.getLogger("gatehouse.blueprints")
BUILTIN_DIR = Path(__file__).resolve().parent / "default"
BUILTIN_PREFIX = "default/"
STATUS_SUCCESSFUL = "successful"
STATUS_ERROR = "error"
STARTUP_LOCK_ID = 0x6761_7465  # "gate": any constant shared by every process of this install
STATUS_SKIPPED = "skipped"  # labelled blueprints.goauthentik.io/instantiate: "false"


@dataclass(frozen=True)
class Outcome:
    path: str
    name: str
    status: str
    detail: str

    def line(self) -> str:
        return f"blueprint {self.path} ({self.name}): {self.status}{': ' + self.detail if self.detail else ''}"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_key(path: Path) -> str:
    """How a file is named in BlueprintInstance.path: built-ins relative (stable across installs)."""
    path = path.resolve()
    if path.parent == BUILTIN_DIR:
        return BUILTIN_PREFIX + path.name
    return str(path)


def builtin_files() -> list[Path]:
    return sorted(BUILTIN_DIR.glob("*.yaml"))


def user_files() -> list[Path]:
    root = Path(settings.CONFIG.blueprints_dir)
    return sorted(root.rglob("*.yaml")) if root.is_dir() else []


def apply_file(path: Path, *, respect_instantiate: bool = False) -> Outcome:
    """Apply one file now (no hash check) and record the result; raises BlueprintError on failure."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BlueprintError(f"{path}: cannot read the file ({exc.strerror}); check the path") from exc
    return _apply_bytes(record_key(path), data, respect_instantiate=respect_instantiate)


def _apply_bytes(key: str, data: bytes, respect_instantiate: bool) -> Outcome:
    digest = content_hash(data)
    LOGGER.debug("applying blueprint", extra={"path": key, "sha256": digest[:12]})
    name = Path(key).stem
    try:
        blueprint = load(data, source=key)
        name = blueprint.name or name
        if respect_instantiate and not blueprint.instantiate:
            _record(key, name, digest, STATUS_SKIPPED, [])
            return Outcome(key, name, STATUS_SKIPPED, "instantiate is false")
        instance = BlueprintInstance.objects.filter(path=key).only("context").first()
        result: ApplyResult = Importer(blueprint, context=instance.context if instance else None).apply()
    except BlueprintError as exc:
        _record(key, name, digest, STATUS_ERROR, [])
        raise BlueprintError(f"{key}: {exc}" if not str(exc).startswith(key) else str(exc)) from exc
    _record(key, name, digest, STATUS_SUCCESSFUL, sorted(result.models))
    detail = result.summary() + (f"; {len(result.warnings)} warning(s): " + "; ".join(result.warnings)
                                 if result.warnings else "")
    return Outcome(key, name, STATUS_SUCCESSFUL, detail)


@transaction.atomic
def _record(key: str, name: str, digest: str, status: str, models: list[str]) -> None:
    instance = BlueprintInstance.objects.select_for_update().filter(path=key).first()
    if instance is None:
        taken = BlueprintInstance.objects.filter(name=name).exclude(path=key).exists()
        instance = BlueprintInstance(path=key, name=f"{name} ({key})" if taken else name)
    fields = {"last_applied_hash": digest, "status": status}
    if models or status == STATUS_SUCCESSFUL:
        fields["managed_models"] = models
    for attr, value in fields.items():
        setattr(instance, attr, value)
    instance.save()


def apply_startup_blueprints() -> list[str]:
    """Apply built-in then user blueprints, skipping unchanged ones; one log line per file.

    A failing file is reported in its line and left as it was (its savepoint rolled back); the
    others still apply. The caller (core.startup.prepare) writes the lines to the start-up log.
    ``ak server`` and ``ak worker`` (and every replica) start together, so the whole pass runs under
    one lock: a PostgreSQL advisory lock, or SQLite's write lock (transaction_mode IMMEDIATE).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STARTUP_LOCK_ID])
        return _apply_startup()


def _apply_startup() -> list[str]:
    files = [(record_key(p), p) for p in [*builtin_files(), *user_files()]]
    done = {path: digest for path, digest in BlueprintInstance.objects.filter(
        path__in=[k for k, _ in files], status__in=(STATUS_SUCCESSFUL, STATUS_SKIPPED),
    ).values_list("path", "last_applied_hash")}
    lines = []
    for key, path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            lines.append(f"blueprint {key}: error: cannot read ({exc.strerror})")
            continue
        if done.get(key) == content_hash(data):
            LOGGER.debug("blueprint not applied: same content as at its last application",
                         extra={"path": key, "sha256": done[key][:12]})
            lines.append(f"blueprint {key}: unchanged")
            continue
        try:
            outcome = _apply_bytes(key, data, respect_instantiate=True)
        except BlueprintError as exc:
            lines.append(f"blueprint {key}: error: {exc}")
            continue
        lines.append(outcome.line())
    return lines
