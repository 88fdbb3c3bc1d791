"""The match probe: "does this thing already exist?" for attributes that are not a source
record (yet). Normalized like an ingest, keyed like the index, scored like any pair; the
answer is golden records ranked by their best-matching member. Writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matching import keys
from matching.frame import RECORD_FIELDS
from matching.scoring import (
    explanation,
    level_labels,
    require_active_model,
    score_pairs,
    scoring_frame,
)
from matching.specs import get_spec
from mdm.entities import get_entity
from mdm.models import SourceRecord, SourceSystem
from mdm.normalize import normalize_record

PROBE_ID = 0  # source record ids start at 1


@dataclass(frozen=True)
class ProbeMatch:
    golden_id: str
    probability: float
    match_weight: float
    source_system: str  # the best-matching member's system code
    source_key: str
    source_record_id: int
    explanation: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def probe_matches(
    *, entity_type: str, attributes: dict, limit: int = 10, source_system: str | None = None
) -> list[ProbeMatch]:
    """Golden records of `entity_type` that `attributes` (canonical attribute names, raw
    values) may describe, best first: per golden record its best-scoring live member, at any
    probability. Reference keys in `attributes` (``customer_key``) resolve as an ingested
    record's would, in `source_system` (a code); without it they stay unresolved. Raises
    UnknownEntity, NoActiveModel. Writes nothing."""
    entity = get_entity(entity_type)
    spec = get_spec(entity.name)
    model = require_active_model(entity_type)
    normalized = normalize_record(entity, attributes)
    system_id = (
        SourceSystem.objects.filter(code=source_system).values_list("pk", flat=True).first()
        if source_system
        else None
    )
    references = {c: attributes[c] for c in entity.reference_columns if attributes.get(c)}
    probe_row = (PROBE_ID, system_id, normalized.keys, normalized.values, references)
    probe_frame = scoring_frame(spec, model, [probe_row])
    found = keys.candidates(entity_type, keys.key_rows(spec, probe_frame)).get(PROBE_ID, set())
    if not found:
        return []
    members = {
        pk: (golden_id, system, source_key)
        for pk, golden_id, system, source_key in SourceRecord.objects.filter(
            pk__in=list(found), deleted=False, golden__isnull=False
        ).values_list("pk", "golden_id", "source_system__code", "source_key")
    }
    rows = SourceRecord.objects.filter(pk__in=list(members)).values_list(*RECORD_FIELDS)
    frame = scoring_frame(spec, model, [probe_row, *sorted(rows)])
    scored = score_pairs(model, frame, [(PROBE_ID, pk) for pk in sorted(members)])
    labels = level_labels(model.settings)
    best: dict[str, ProbeMatch] = {}
    for _, row in scored.iterrows():
        record_id = int(row["unique_id_r"])
        golden_id, system, source_key = members[record_id]
        probability = float(row["match_probability"])
        if golden_id in best and best[golden_id].probability >= probability:
            continue
        best[golden_id] = ProbeMatch(
            golden_id=golden_id,
            probability=probability,
            match_weight=float(row["match_weight"]),
            source_system=system,
            source_key=source_key,
            source_record_id=record_id,
            explanation=explanation(row, labels),
        )
    ranked = sorted(best.values(), key=lambda m: (-m.probability, m.golden_id))
    return ranked[:limit]
