"""Incremental matching: score changed source records against existing ones with the stored
model, and apply the same thresholds and constraints as a batch run.

For a batch of changed records (one ingest chunk): re-key them in the blocking-key index, find
the records sharing a key (one query, bounded per key value), score those pairs with Splink's
SQL (`matching.scoring`), cluster the local neighbourhood with the batch run's pure `cluster`
(steward "not a match" decisions hold, even transitively; a cluster keeps its oldest golden
ID), merge through `mdm.services.resolution.merge_many`, and store match candidates for the
review band (`matching.review`) — merges and candidates in one transaction. Deleted records
leave the index and their pairs leave the candidates.

Workers matching at the same time: scoring runs unlocked; the plan is made under locks. The
apply transaction locks the golden records of every record it clusters (ID order, as the
resolution services lock), checks that no record moved meanwhile (else it plans again from
fresh membership), and only then reads the neighbourhood, the steward decisions and plans.
Two workers whose neighbourhoods share a golden record therefore plan one after the other,
each from what the other committed: no merge is lost, no decision is broken by a plan made
before another worker's merge.

Without an active model nothing happens (every ingest calls this): records ingested before
the first model are matched by the batch run that trains it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import pyarrow as pa
from django.db import DatabaseError, transaction

from matching import generic, keys
from matching.clustering import ScoredPair, cluster
from matching.decisions import cannot_link_pairs, kept_apart, reopen_stale_decisions
from matching.frame import RECORD_FIELDS, frame_from_records, live_frame
from matching.models import MatchModel
from matching.review import refusal_reasons, review_pairs, store_candidates
from matching.scoring import (
    ScoredColumns,
    active_model,
    frame_with_frequencies,
    level_labels,
    score_pair_columns,
    thresholds_of,
)
from matching.specs import SPECS, MatchSpec, Thresholds
from mdm import identifiers
from mdm.db.background import Background
from mdm.db.conflicts import lost_race
from mdm.db.ids import ids_in
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, LinkMethod, SourceRecord
from mdm.selectors import held_dates, held_identifiers
from mdm.services.audit import Actor
from mdm.services.resolution import merge_many

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # a record moved before the locks were taken: plan again from fresh membership
OPEN_CANDIDATE = "uniq_open_candidate_goldens"  # a batch run stored the same pair meanwhile


class _Moved(Exception):
    """A record to cluster moved to a golden record not locked: plan again."""


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
    thresholds = thresholds_of(model)

    # The golden ID comes along with the rows, so the first plan needs no query of its own.
    fetched = list(
        SourceRecord.objects.filter(pk__in=list(record_ids), entity_type=entity_type).values_list(
            "deleted", "golden_id", *RECORD_FIELDS
        )
    )
    live = sorted(tuple(record) for deleted, _, *record in fetched if not deleted)
    removed = [record[0] for deleted, _, *record in fetched if deleted]
    removed_goldens = {golden for deleted, golden, *_ in fetched if deleted and golden}
    golden_of = {record[0]: golden for deleted, golden, *record in fetched if not deleted}
    summary.records, summary.removed = len(live), len(removed)

    # Keys need no term frequencies: those are read once, for the frame that is scored.
    # The generic values are read once, for the changed records and their neighbours.
    generic_values = generic.stored(entity_type) if live and spec.generic else {}
    changed_frame = frame_from_records(spec, live, generic_values=generic_values)
    record_keys = keys.key_rows(spec, changed_frame)
    step("read")
    changed = _Changed(
        changed_frame, record_keys, removed, golden_of, removed_goldens, generic_values
    )
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
    removed_goldens: set[str] = field(default_factory=set)  # the deleted ones' golden records
    generic_values: generic.Found = field(default_factory=dict)  # `generic.stored`, read once
    writing: Background | None = None

    def start_writing(self, entity_type: str) -> Background:
        """Replace the stored keys of the changed and removed records, in the background
        (`keys.candidates` does not depend on them being stored yet); started once their
        candidates are read, so the write does not slow that lookup down."""
        stale = [*self.frame["unique_id"].to_pylist(), *self.removed]
        self.writing = keys.write_in_background(entity_type, self.keys, stale=stale)
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
    if removed:  # their pairs leave the candidates of their golden records
        with transaction.atomic():
            summary.superseded += store_candidates(
                entity_type=entity_type, rescored=removed, goldens=changed.removed_goldens
            ).superseded
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
        other_frame, other_golden = live_frame(spec, others, generic_values=changed.generic_values)
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
    scored = score_pair_columns(model, frame, pairs)
    step("score")
    summary.pairs_scored = len(scored)
    in_band = scored.at_least(thresholds.review)

    for attempt in range(1, ATTEMPTS + 1):
        try:
            merges, review = _apply(
                entity_type,
                scored,
                in_band,
                changed_ids,
                model=model,
                thresholds=thresholds,
                actor=actor,
                # read with the rows on the first attempt; a re-plan reads fresh membership
                golden_of=golden_of if attempt == 1 else None,
            )
        except (InvalidResolution, _Moved) as error:
            if attempt == ATTEMPTS:
                raise
            logger.info("incremental plan went stale (%r); re-planning", error)
            continue
        except DatabaseError as error:
            if attempt == ATTEMPTS or not lost_race(error, unique=(OPEN_CANDIDATE,)):
                raise
            logger.info("incremental apply lost a race (%s); re-planning", error)
            continue
        summary.merges, (summary.sent_to_review, superseded) = merges, review
        summary.superseded += superseded
        break
    step("apply")


def _locked_neighbourhood(
    record_ids: set[int], golden_of: Mapping[int, str | None] | None
) -> tuple[dict[int, str], dict[str, datetime]]:
    """Lock the golden records of `record_ids` (ID order) and return every live member of
    them (so constraints on members not scored now hold) with their creation times. Raises
    `_Moved` when a record is no longer in one of the golden records locked (`golden_of`,
    read before, is then out of date)."""
    if golden_of is None:
        golden_of = dict(
            SourceRecord.objects.filter(
                ids_in(SourceRecord, "id", record_ids), golden__isnull=False
            ).values_list("pk", "golden_id")
        )
    wanted = {golden_of[pk] for pk in record_ids if golden_of.get(pk)}
    created_at = dict(
        GoldenRecord.objects.select_for_update()
        .filter(ids_in(GoldenRecord, "id", wanted))
        .order_by("id")
        .values_list("id", "created_at")
    )
    membership: dict[int, str] = dict(
        SourceRecord.objects.filter(
            ids_in(SourceRecord, "golden", created_at), deleted=False
        ).values_list("pk", "golden_id")
    )
    now = SourceRecord.objects.filter(
        ids_in(SourceRecord, "id", set(record_ids) - set(membership)),
        deleted=False,
        golden__isnull=False,
    ).values_list("pk", flat=True)
    if set(record_ids) - set(membership) and list(now):
        raise _Moved(f"records {sorted(set(record_ids) - set(membership))[:5]} moved")
    return membership, created_at


def _apply(
    entity_type: str,
    scored: ScoredColumns,
    in_band: Sequence[int],
    changed_ids: Collection[int],
    *,
    model: MatchModel,
    thresholds: Thresholds,
    actor: Actor,
    golden_of: Mapping[int, str] | None = None,
) -> tuple[int, tuple[int, int]]:
    """Cluster the pairs of `scored` at `in_band` (their positions) with the neighbourhood,
    each at its own auto-link bar (`Thresholds.auto_link_bars`, as a batch run), merge, and
    store the candidates, in one transaction under the neighbourhood's locks."""
    bars = thresholds.auto_link_bars(SPECS[entity_type], scored)
    pairs = [
        ScoredPair(
            int(scored["unique_id_l"][i]),
            int(scored["unique_id_r"][i]),
            float(scored["match_probability"][i]),
            bar=float(bars[i]),
        )
        for i in in_band
    ]
    record_ids = set(changed_ids) | {p.left for p in pairs} | {p.right for p in pairs}
    with transaction.atomic():
        membership, created_at = _locked_neighbourhood(record_ids, golden_of)
        decisions = kept_apart(entity_type, record_ids=list(membership))  # read once, for both
        reopen_stale_decisions(entity_type, decisions=decisions)
        cannot_link = cannot_link_pairs(entity_type, membership=membership, decisions=decisions)
        clustering = cluster(
            pairs=pairs,
            membership=membership,
            created_at=created_at,
            threshold=thresholds.auto_link,
            cannot_link=cannot_link,
            identifiers=partial(held_identifiers, entity_type, membership),
            dates=partial(held_dates, entity_type, membership),
            conflict_reason=partial(identifiers.reason, entity_type),
        )
        if clustering.merges:
            merge_many(
                merges=[(m.survivor, m.loser, m.probability) for m in clustering.merges],
                actor=actor,
                reason="incremental match: auto-link",
                method=LinkMethod.AUTO,
            )
        target = {m.loser: m.survivor for m in clustering.merges}
        final = {pk: target.get(golden_id, golden_id) for pk, golden_id in membership.items()}
        apart = [
            scored.row(position)
            for position, pair in zip(in_band, pairs, strict=True)
            if final.get(pair.left) is not None
            and final.get(pair.right) is not None
            and final[pair.left] != final[pair.right]
        ]
        reasons = refusal_reasons(clustering.refused)
        stored = store_candidates(
            entity_type=entity_type,
            pairs=review_pairs(apart, level_labels(model.settings), reasons=reasons),
            rescored=changed_ids,
            model=model,
            membership=final,  # every live member of the locked golden records, merged
        )
    return len(clustering.merges), (stored.open, stored.superseded)
