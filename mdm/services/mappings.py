"""Source mappings: save a new version (checked first; nothing is written for a bad one) and
choose which version is active. A version is never edited, so a record's mapping can always
be read back; ingest applies the active version (`mdm.selectors.active_mapping`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Max

from mdm.entities import get_entity
from mdm.mappings import CompiledMapping, UnmappableRecord, compile_mapping
from mdm.models import SourceMapping, SourceSystem
from mdm.services.audit import Actor, actor_label, save_with_history
from mdm.services.ingest import RecordRejected, get_source_system, prepare_record

PREVIEW_LIMIT = 100  # sample payloads one preview maps


def save_mapping_version(
    *,
    system_code: str,
    entity_type: str,
    spec: Any,
    actor: Actor,
    note: str = "",
    activate: bool = True,
) -> SourceMapping:
    """Check `spec` (InvalidMapping names every problem: field and reason) and store it as the
    next version for the system and entity, the active one unless `activate` is false. The
    source system's row is locked first, so two stewards saving at once get versions n and
    n + 1, never the same number."""
    entity = get_entity(entity_type)
    system = get_source_system(system_code, create=True)
    compile_mapping(spec, entity_type=entity.name, system=system.code)
    with transaction.atomic():
        SourceSystem.objects.select_for_update().filter(pk=system.pk).first()
        versions = SourceMapping.objects.filter(source_system=system, entity_type=entity.name)
        latest = versions.aggregate(latest=Max("version"))["latest"] or 0
        if activate:
            _deactivate(system, entity.name, actor=actor, reason=f"replaced by v{latest + 1}")
        mapping = SourceMapping(
            source_system=system,
            entity_type=entity.name,
            version=latest + 1,
            spec=spec,
            active=activate,
            note=note[:255],
            created_by=actor_label(actor),
        )
        save_with_history(mapping, actor=actor, reason=note or f"mapping v{latest + 1}")
    return mapping


def activate_mapping_version(*, mapping: SourceMapping, actor: Actor, reason: str) -> None:
    """Make `mapping` the version ingest applies (e.g. back to an earlier one)."""
    with transaction.atomic():
        SourceSystem.objects.select_for_update().filter(pk=mapping.source_system_id).first()
        mapping.refresh_from_db()
        if mapping.active:
            return
        _deactivate(mapping.source_system, mapping.entity_type, actor=actor, reason=reason)
        mapping.active = True
        save_with_history(mapping, actor=actor, reason=reason, update_fields=["active"])


def deactivate_mappings(*, system_code: str, entity_type: str, actor: Actor, reason: str) -> None:
    """No active mapping: the system sends canonical records again."""
    system = get_source_system(system_code)
    with transaction.atomic():
        SourceSystem.objects.select_for_update().filter(pk=system.pk).first()
        _deactivate(system, get_entity(entity_type).name, actor=actor, reason=reason)


def _deactivate(system: SourceSystem, entity_type: str, *, actor: Actor, reason: str) -> None:
    for current in SourceMapping.objects.filter(
        source_system=system, entity_type=entity_type, active=True
    ):
        current.active = False
        save_with_history(current, actor=actor, reason=reason, update_fields=["active"])


def preview_mapping(
    *, mapping: CompiledMapping, payloads: Sequence[Any], system_code: str = ""
) -> list[dict[str, Any]]:
    """What ingest would make of each sample payload under `mapping`, writing nothing: the
    payload (before), the mapped record and its normalized attributes with the values
    normalization would flag (after), or the rejection (code, target, path, reason) — the same
    code path as a real load, so a preview that passes loads."""
    entity = get_entity(mapping.entity_type)
    system = SourceSystem(code=system_code)
    results: list[dict[str, Any]] = []
    for index, payload in enumerate(payloads[:PREVIEW_LIMIT]):
        row: dict[str, Any] = {"index": index, "payload": payload, "mapped": None}
        row.update(attributes=None, references=None, flagged=[], rejection=None)
        try:
            if isinstance(payload, dict):
                row["mapped"] = mapping.apply(payload)
            record = prepare_record(entity, system, payload, mapping=mapping)
        except UnmappableRecord as error:
            row["rejection"] = _rejection("unmappable", error.reason, error.target, error.path)
        except RecordRejected as rejected:
            row["rejection"] = _rejection(rejected.code, str(rejected), "", "")
        else:
            row["attributes"] = record.values
            row["references"] = record.references
            row["flagged"] = [
                {"attribute": name, "reason": problem["reason"]}
                for name, problem in record.invalid.items()
            ]
        results.append(row)
    return results


def _rejection(code: str, reason: str, target: str, path: str) -> dict[str, str]:
    return {"code": code, "target": target, "path": path, "reason": reason}
