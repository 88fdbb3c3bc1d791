"""Incremental matching: score changed source records against existing ones with the stored
model, and apply the same thresholds and constraints as a batch run.

For a batch of changed records (one ingest chunk): re-key them in the blocking-key index, find
the records sharing a key (one query, bounded per key value), score those pairs with Splink's
SQL (`matching.scoring`), cluster the local neighbourhood with the batch run's pure `cluster`
(steward "not a match" decisions hold, even transitively; a cluster keeps its oldest golden
ID), merge through `mdm.services.resolution.merge_many`, and upsert match candidates for the
review band — merges and candidates in one transaction. Deleted records leave the index and
their open candidates are superseded.

Without an active model nothing happens (every ingest calls this): records ingested before
the first model are matched by the batch run that trains it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import pyarrow as pa
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from matching import keys
from matching.clustering import ScoredPair, cluster
from matching.decisions import cannot_link_pairs, reopen_stale_decisions
from matching.frame import RECORD_FIELDS, frame_from_records, live_frame
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, MatchModel
from matching.scoring import (
    active_model,
    explanation,
    frame_with_frequencies,
    level_labels,
    score_pairs,
)
from matching.specs import SPECS, MatchSpec, Thresholds, thresholds_for
from mdm.db.ids import ids_in
from mdm.db.update import update_rows
from mdm.errors import InvalidResolution
from mdm.models import LinkMethod, SourceRecord
from mdm.services.audit import Actor
from mdm.services.resolution import merge_many

logger = logging.getLogger(__name__)

ATTEMPTS = 3  # a concurrent merge can make a plan stale; re-plan from fresh membership


@dataclass
class IncrementalSummary:
    entity_type: str
    records: int = 0  # live changed records matched
    removed: int = 0  # deleted records taken out of the index
    candidates_found: int = 0  # distinct other records found by blocking keys
    pairs_scored: int = 0
    merges: int = 0
    sent_to_review: int = 0
    superseded: int = 0
    model_version: int | None = None
    skipped: str = ""  # why nothing was matched, when nothing was
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def match_records(*, entity_type: str, record_ids: list[int], actor: Actor) -> IncrementalSummary:
    """Match the source records `record_ids` (new, changed or deleted) of `entity_type`
    against the existing ones with the active model. Idempotent: a second call finds the
    records already linked and the candidates already stored."""
    started = time.monotonic()
    summary = IncrementalSummary(entity_type=entity_type)
    lap = started

    def step(name: str) -> None:
        nonlocal lap
        now = time.monotonic()
        summary.timings[name] = round(summary.timings.get(name, 0.0) + now - lap, 4)
        lap = now

    spec = SPECS.get(entity_type)
    model = active_model(entity_type) if spec is not None else None
    if spec is None or model is None:
        summary.skipped = "no match spec" if spec is None else "no active model"
        return summary
    summary.model_version = model.version
    thresholds = thresholds_for(entity_type)

    # The golden ID comes along with the rows, so the first plan needs no query of its own.
    fetched = list(
        SourceRecord.objects.filter(pk__in=list(record_ids), entity_type=entity_type).values_list(
            "deleted", "golden_id", *RECORD_FIELDS
        )
    )
    live = sorted(tuple(record) for deleted, _, *record in fetched if not deleted)
    removed = [record[0] for deleted, _, *record in fetched if deleted]
    golden_of = {record[0]: golden for deleted, golden, *record in fetched if not deleted}
    summary.records, summary.removed = len(live), len(removed)

    # Keys need no term frequencies: those are read once, for the frame that is scored.
    changed_frame = frame_from_records(spec, live)
    record_keys = keys.key_rows(spec, changed_frame)
    step("read")
    changed = _Changed(changed_frame, record_keys, removed, golden_of)
    try:
        _match(spec, model, thresholds, changed, summary, actor=actor, step=step)
    finally:
        # started by matching; here when it failed before the write began
        writing = changed.writing or changed.start_writing(entity_type)
        writing.wait()
        step("index")  # what is left of the write when matching is done
    summary.seconds = round(time.monotonic() - started, 4)
    return summary


@dataclass
class _Changed:
    frame: pa.Table  # the live changed records
    keys: pa.Table  # their blocking keys (`keys.key_rows`)
    removed: list[int]  # the deleted ones
    golden_of: dict[int, str]  # record id -> golden ID, filled in as records are read
    writing: keys.BackgroundWrite | None = None

    def start_writing(self, entity_type: str) -> keys.BackgroundWrite:
        """Replace the stored keys of the changed and removed records, in the background
        (`keys.candidates` does not depend on them being stored yet); started once their
        candidates are read, so the write does not slow that lookup down."""
        stale = [*self.frame["unique_id"].to_pylist(), *self.removed]
        self.writing = keys.BackgroundWrite(entity_type, self.keys, stale=stale)
        return self.writing


def _match(
    spec: MatchSpec,
    model: MatchModel,
    thresholds: Thresholds,
    changed: _Changed,
    summary: IncrementalSummary,
    *,
    actor: Actor,
    step: Callable[[str], None],
) -> None:
    """Find, score and apply: candidates by key, their frame, scores, merges and review."""
    entity_type = spec.entity_type
    changed_frame, record_keys, removed, golden_of = (
        changed.frame,
        changed.keys,
        changed.removed,
        changed.golden_of,
    )
    if removed:
        summary.superseded += _supersede(
            MatchCandidate.objects.filter(Q(left_id__in=removed) | Q(right_id__in=removed))
        )
    if not changed_frame.num_rows:
        changed.start_writing(entity_type)
        return

    found = keys.candidates(entity_type, record_keys)
    changed.start_writing(entity_type)
    step("candidates")
    changed_ids = changed_frame["unique_id"].to_pylist()
    others = set().union(*found.values()) - set(changed_ids)
    summary.candidates_found = len(others)
    frame = changed_frame
    if others:
        other_frame, other_golden = live_frame(spec, others)
        golden_of.update(other_golden)
        frame = pa.concat_tables([changed_frame, other_frame])
    step("others")
    frame = frame_with_frequencies(entity_type, frame, model, values_of=changed_frame)
    step("frame")
    present = set(frame["unique_id"].to_pylist())
    pairs = sorted(
        {
            (min(a, b), max(a, b))
            for a, found_for_a in found.items()
            for b in found_for_a
            if b in present
        }
    )
    scored = score_pairs(model, frame, pairs)
    step("score")
    summary.pairs_scored = len(scored)
    scored = scored[scored["match_probability"] >= thresholds.review]

    for attempt in range(1, ATTEMPTS + 1):
        try:
            merges, review = _apply(
                entity_type,
                scored,
                changed_ids,
                model=model,
                threshold=thresholds.auto_link,
                actor=actor,
                # read with the rows on the first attempt; a re-plan reads fresh membership
                golden_of=golden_of if attempt == 1 else None,
            )
        except InvalidResolution as error:
            if attempt == ATTEMPTS:
                raise
            logger.info("incremental plan went stale (%s); re-planning", error)
            continue
        summary.merges, (summary.sent_to_review, superseded) = merges, review
        summary.superseded += superseded
        break
    step("apply")


def _neighbourhood(golden_ids: set[str]) -> tuple[dict[int, str], dict[str, datetime]]:
    """Every live member of `golden_ids` (so constraints on members not scored now hold)."""
    membership: dict[int, str] = {}
    created_at: dict[str, datetime] = {}
    for pk, golden_id, golden_created in SourceRecord.objects.filter(
        ids_in(SourceRecord, "golden", golden_ids), deleted=False
    ).values_list("pk", "golden_id", "golden__created_at"):
        membership[pk] = golden_id
        created_at[golden_id] = golden_created
    return membership, created_at


def _apply(
    entity_type: str,
    scored: pd.DataFrame,
    changed_ids: Collection[int],
    *,
    model: MatchModel,
    threshold: float,
    actor: Actor,
    golden_of: Mapping[int, str] | None = None,
) -> tuple[int, tuple[int, int]]:
    record_ids = set(changed_ids) | set(scored["unique_id_l"]) | set(scored["unique_id_r"])
    if golden_of is None:
        golden_of = dict(
            SourceRecord.objects.filter(pk__in=list(record_ids), golden__isnull=False).values_list(
                "pk", "golden_id"
            )
        )
    else:
        golden_of = {
            pk: golden_of[pk] for pk in record_ids if pk in golden_of and golden_of[pk] is not None
        }
    membership, created_at = _neighbourhood(set(golden_of.values()))
    reopen_stale_decisions(entity_type, record_ids=list(membership))
    cannot_link = cannot_link_pairs(entity_type, record_ids=list(membership))
    pairs = [
        ScoredPair(int(left), int(right), float(p))
        for left, right, p in zip(
            scored["unique_id_l"], scored["unique_id_r"], scored["match_probability"], strict=True
        )
    ]
    clustering = cluster(
        pairs=pairs,
        membership=membership,
        created_at=created_at,
        threshold=threshold,
        cannot_link=cannot_link,
    )
    target = {m.loser: m.survivor for m in clustering.merges}
    final = {pk: target.get(golden_id, golden_id) for pk, golden_id in membership.items()}
    with transaction.atomic():
        if clustering.merges:
            merge_many(
                merges=[(m.survivor, m.loser, m.probability) for m in clustering.merges],
                actor=actor,
                reason="incremental match: auto-link",
                method=LinkMethod.AUTO,
            )
        review = _store_candidates(entity_type, scored, final, changed_ids, model=model)
    return len(clustering.merges), review


def _supersede(candidates: QuerySet[MatchCandidate]) -> int:
    return candidates.filter(status=CandidateStatus.OPEN).update(
        status=CandidateStatus.SUPERSEDED, updated_at=timezone.now()
    )


def _store_candidates(
    entity_type: str,
    scored: pd.DataFrame,
    final: Mapping[int, str],
    changed_ids: Collection[int],
    *,
    model: MatchModel,
) -> tuple[int, int]:
    """Upsert open candidates for scored pairs still apart (the review band, and auto-link
    pairs a constraint refused); supersede the changed records' other open candidates —
    now in one golden record, or no longer in the band — unless a steward decision is behind
    them. Returns (open candidates stored, candidates superseded)."""
    labels = level_labels(model.settings)
    apart = {}
    for _, row in scored.iterrows():
        left, right = sorted((int(row["unique_id_l"]), int(row["unique_id_r"])))
        if final.get(left) is not None and final.get(left) != final.get(right):
            apart[(left, right)] = row

    def touching(model: type[Model]) -> Q:
        return ids_in(model, "left", changed_ids) | ids_in(model, "right", changed_ids)

    existing = {
        (c.left_id, c.right_id): c
        # every scored pair names a changed record, so `touching` covers them all
        for c in MatchCandidate.objects.filter(touching(MatchCandidate), entity_type=entity_type)
    }
    decided = set(
        MatchDecision.objects.filter(touching(MatchDecision), is_current=True).values_list(
            "left_id", "right_id"
        )
    )
    now = timezone.now()
    to_create, to_update, stored = [], [], 0
    for (left, right), row in apart.items():
        probability, weight = float(row["match_probability"]), float(row["match_weight"])
        candidate = existing.get((left, right))
        if candidate is None:
            to_create.append(
                MatchCandidate(
                    entity_type=entity_type,
                    left_id=left,
                    right_id=right,
                    probability=probability,
                    match_weight=weight,
                    explanation=explanation(row, labels),
                    model=model,
                )
            )
            stored += 1
        elif candidate.status in (CandidateStatus.OPEN, CandidateStatus.SUPERSEDED) and (
            (left, right) not in decided
        ):
            candidate.status = CandidateStatus.OPEN
            candidate.probability, candidate.match_weight = probability, weight
            candidate.explanation = explanation(row, labels)
            candidate.model, candidate.updated_at = model, now
            to_update.append(candidate)
            stored += 1
        elif candidate.status == CandidateStatus.OPEN:
            stored += 1
    superseded = 0
    for key, candidate in existing.items():
        if key in apart or candidate.status != CandidateStatus.OPEN or key in decided:
            continue
        candidate.status, candidate.updated_at = CandidateStatus.SUPERSEDED, now
        to_update.append(candidate)
        superseded += 1
    MatchCandidate.objects.bulk_create(to_create, batch_size=1000)
    update_rows(
        MatchCandidate,
        to_update,
        ["probability", "match_weight", "explanation", "model", "status", "updated_at"],
    )
    return stored, superseded
