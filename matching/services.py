"""Batch matching: train (when needed), predict, cluster with constraints, apply.

Membership changes only through `mdm.services.resolution.merge_many`, one transaction per batch
of merges, so a run killed midway leaves whole batches only and the re-run finishes the job.
Running twice changes nothing the second time: the clustering of an already-applied result has
no merges.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import pandas as pd
import pyarrow as pa
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from matching import frequencies, generic, keys
from matching.activation import stage_retrained
from matching.apply import apply_merges
from matching.clustering import Clustering, ScoredPair, cluster
from matching.decisions import cannot_link_pairs, reopen_stale_decisions
from matching.engine import connection, linker_for
from matching.frame import build_frame
from matching.incremental import IncrementalSummary, match_records
from matching.models import (
    MatchKey,
    MatchModel,
    MatchRun,
    RunStatus,
    TermFrequency,
)
from matching.probe import ProbeMatch, probe_matches
from matching.review import refusal_reasons, review_pairs, store_candidates
from matching.scoring import (
    Explanation,
    active_model,
    explain_pair,
    level_labels,
    thresholds_of,
)
from matching.specs import MatchSpec, get_spec
from matching.training import training_notes
from mdm import identifiers, metrics
from mdm.context import audit_context
from mdm.db.background import Background
from mdm.db.conflicts import lost_race
from mdm.db.ids import narrowed
from mdm.db.maintenance import analyze, vacuum
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.selectors import held_dates, held_identifiers
from mdm.services.audit import Actor, actor_label
from mdm.services.match_requests import (
    claim_match_request,
    complete_match_request,
    fail_match_request,
)

__all__ = [
    "Explanation",
    "IncrementalSummary",
    "MatchRunSummary",
    "ProbeMatch",
    "active_model",
    "explain_pair",
    "match_records",
    "match_request",
    "probe_matches",
    "run_batch_matching",
    "train_model",
]


logger = logging.getLogger(__name__)

REVIEW_ATTEMPTS = 3  # storing candidates runs again when a concurrent run stored one first
OPEN_CANDIDATE = "uniq_open_candidate_goldens"


@dataclass
class MatchRunSummary:
    run_id: int
    entity_type: str
    records: int = 0
    pairs_scored: int = 0
    merges: int = 0
    sent_to_review: int = 0
    goldens_before: int = 0
    goldens_after: int = 0
    seconds: float = 0.0
    model_version: int | None = None
    staged_model_version: int | None = None  # a retrain staged this version, applied nothing
    timings: dict[str, float] = field(default_factory=dict)
    # What training could not do this run (an EM rule the data does not support), in words.
    training_notes: list[str] = field(default_factory=list)


# -------------------------------------------------------------------------- match requests


def match_request(*, request_id: int, actor: Actor) -> IncrementalSummary | None:
    """Match the records of one `MatchRequest` (written by ingest with the change): claim it,
    match, then delete it — no transaction held open across the matching. None when it is
    done already, or another worker holds it. On an error the request is kept (with the
    error's class) for another attempt after a backoff, and the error is raised."""
    request = claim_match_request(
        request_id=request_id, lease_seconds=settings.KEYSTONE_MATCH_REQUEST_LEASE_SECONDS
    )
    if request is None:
        return None
    # Matching runs under the correlation ID of the ingest that asked for it, so the events
    # its merges write carry it (also when the sweep, not the ingest's own task, sent it).
    with audit_context(correlation=request.correlation_id or None):
        try:
            summary = match_records(
                entity_type=request.entity_type, record_ids=request.record_ids, actor=actor
            )
        except Exception as error:
            fail_match_request(request=request, error=error)
            raise
        complete_match_request(request=request)
        logger.info(
            "match request %s: %s %s records matched, %s merges, %s sent to review%s",
            request_id,
            summary.records,
            request.entity_type,
            summary.merges,
            summary.sent_to_review,
            f" (skipped: {summary.skipped})" if summary.skipped else "",
        )
    metrics.record_matching(
        entity=request.entity_type,
        mode=metrics.INCREMENTAL,
        records=summary.records,
        merges=summary.merges,
        sent_to_review=summary.sent_to_review,
        seconds=summary.seconds,
    )
    metrics.record_resolved(
        system=request.source_system.code,
        entity=request.entity_type,
        seconds=(timezone.now() - request.created_at).total_seconds(),
    )
    return summary


# ----------------------------------------------------------------------------------- models


def train_model(
    *, entity_type: str, spec: MatchSpec | None = None, frame: pa.Table | None = None
) -> MatchModel:
    """Train a new version: the first one is active at once; a later one is staged with what
    it would change (`matching.activation`) until a steward activates it. A retrain changes no
    link by itself."""
    if spec is not None and spec is not get_spec(entity_type):
        raise ValueError(f"train_model trains the declared {entity_type} spec")
    return stage_retrained(entity_type=entity_type, actor="system:train", frame=frame)


# ------------------------------------------------------------------------------ prediction


def predict_pairs(frame: pa.Table, model: dict, *, min_probability: float) -> pd.DataFrame:
    """Scored pairs at or above `min_probability`, blocked by the spec's prediction rules."""
    with linker_for(frame, model) as linker:
        return linker.inference.predict(
            threshold_match_probability=min_probability, warning_mode="never"
        ).as_pandas_dataframe()


# ------------------------------------------------------------------------------------ run


def _active_goldens(entity_type: str) -> int:
    return GoldenRecord.objects.filter(entity_type=entity_type, status=GoldenStatus.ACTIVE).count()


def _progress(run: MatchRun, summary: MatchRunSummary, phase: str, **counts: int) -> None:
    """Publish the run's phase and counts so far (the admin and CLI read the MatchRun row)."""
    for name, value in counts.items():
        setattr(summary, name, value)
    fields: dict[str, Any] = {"phase": phase, "timings": summary.timings}
    fields.update(
        (name, getattr(summary, name))
        for name in ("records", "pairs_scored", "merges", "sent_to_review", "goldens_before")
    )
    MatchRun.objects.filter(pk=run.pk).update(**fields)
    for name, value in fields.items():
        setattr(run, name, value)


def _start_run(entity_type: str, actor: Actor, retrain: bool, run_id: int | None) -> MatchRun:
    """A new run, or (a task re-delivered after a worker died) the run `run_id` again."""
    if run_id is not None:
        run = MatchRun.objects.filter(pk=run_id, entity_type=entity_type).first()
        if run is not None:
            run.status, run.error, run.finished_at = RunStatus.RUNNING, "", None
            run.retrained = run.retrained or retrain
            run.save(update_fields=["status", "error", "finished_at", "retrained"])
            return run
    return MatchRun.objects.create(
        entity_type=entity_type, actor=actor_label(actor), retrained=retrain
    )


def refresh_derived_tables(
    spec: MatchSpec, frame: pa.Table, model: MatchModel, *, since: datetime, key_rebuild: Background
) -> dict:
    """Wait for `key_rebuild` (the blocking-key index a batch run rebuilds from `frame` beside
    training, `keys.rebuild_in_background`) and rebuild the term frequencies of
    `spec.entity_type` from `frame`; then re-key the records changed since `since` (after the
    frame was read), so an incremental update that raced the rebuild is not lost."""
    with connection() as con:
        tf = frequencies.compute(frame, frequencies.tf_columns(model.settings), con=con)
    written = key_rebuild.wait()
    stored = frequencies.rebuild(spec.entity_type, tf)
    # Rewritten wholesale: the planner must see their size, and the key lookups of incremental
    # matching read the covering index only once the visibility map is set (VACUUM).
    vacuum(MatchKey, TermFrequency)
    late = SourceRecord.objects.filter(entity_type=spec.entity_type, updated_at__gte=since)
    late_live = list(late.filter(deleted=False).values_list("pk", flat=True))
    late_removed = list(late.filter(deleted=True).values_list("pk", flat=True))
    if late_live or late_removed:
        keys.update_index(spec, build_frame(spec, record_ids=late_live), removed_ids=late_removed)
    return {"keys": written, "term_frequencies": stored, "late_records": len(late_live)}


def run_batch_matching(
    *, entity_type: str, actor: Actor, retrain: bool = False, run_id: int | None = None
) -> MatchRunSummary:
    """Match every live source record of `entity_type` and apply the result.

    With `retrain`, a new model version is trained first; when another version is active the
    new one is only staged (`matching.activation`: its diff computed, nothing applied) and the
    run ends there.

    Pairs at or above the auto-link threshold merge golden records (the oldest keeps its ID);
    pairs in the review band become open match candidates; "not a match" candidates are
    constraints no run breaks, even transitively. The run's phase and counts are published
    as it goes; with `run_id` (a re-delivered task) the same run record is continued.
    """
    spec = get_spec(entity_type)
    started = time.monotonic()
    run = _start_run(entity_type, actor, retrain, run_id)
    summary = MatchRunSummary(run_id=run.pk, entity_type=entity_type)
    summary.goldens_before = _active_goldens(entity_type)

    def lap(step: str, since: float) -> float:
        now = time.monotonic()
        summary.timings[step] = round(now - since, 3)
        return now

    key_rebuild: Background | None = None
    try:
        mark = time.monotonic()
        _progress(run, summary, "frame")
        frame_read_at = timezone.now()
        frame, _ = generic.refresh(spec, build_frame(spec, masked=False))
        mark = lap("frame", mark)
        _progress(run, summary, "train" if retrain else "index", records=frame.num_rows)
        if frame.num_rows < 2:
            return _finish(run, summary, started)
        # The keys depend on the records alone: written while the model trains.
        key_rebuild = keys.rebuild_in_background(spec, frame)

        model = active_model(entity_type)
        if model is None or retrain:
            _progress(run, summary, "train")
            trained = train_model(entity_type=entity_type, frame=frame)
            run.retrained = True
            summary.training_notes = training_notes(trained.training_report or {})
            mark = lap("train", mark)
            if not trained.is_active:  # staged: a steward activates it; nothing applied now
                key_rebuild.wait()  # the records' keys, current either way
                summary.staged_model_version = trained.version
                MatchRun.objects.filter(pk=run.pk).update(retrained=True)
                return _finish(run, summary, started)
            model = trained
        run.model = model
        thresholds = thresholds_of(model)
        summary.model_version = model.version
        MatchRun.objects.filter(pk=run.pk).update(model=model, retrained=run.retrained)

        _progress(run, summary, "index")
        refresh_derived_tables(spec, frame, model, since=frame_read_at, key_rebuild=key_rebuild)
        mark = lap("index", mark)

        _progress(run, summary, "predict")
        model_settings = dict(model.settings)
        model_settings["retain_intermediate_calculation_columns"] = True
        model_settings["retain_matching_columns"] = True
        scored = predict_pairs(frame, model_settings, min_probability=thresholds.review)
        mark = lap("predict", mark)
        _progress(run, summary, "cluster", pairs_scored=len(scored))

        membership = _membership(entity_type)
        reopen_stale_decisions(entity_type)
        cannot_link = cannot_link_pairs(entity_type, membership=membership)
        pairs = [
            ScoredPair(int(left), int(right), float(p), bar=float(bar))
            for left, right, p, bar in zip(
                scored["unique_id_l"],
                scored["unique_id_r"],
                scored["match_probability"],
                thresholds.auto_link_bars(spec, scored),
                strict=True,
            )
        ]
        clustering = cluster(
            pairs=pairs,
            membership=membership,
            created_at=_created_at,
            threshold=thresholds.auto_link,
            cannot_link=cannot_link,
            identifiers=partial(held_identifiers, entity_type, membership),
            dates=partial(held_dates, entity_type, membership),
            conflict_reason=partial(identifiers.reason, entity_type),
        )
        mark = lap("cluster", mark)

        _progress(run, summary, "apply")
        summary.merges = apply_merges(
            clustering.merges,
            actor=actor,
            reason=f"match run #{run.pk}: auto-link",
            on_progress=lambda done: _progress(run, summary, "apply", merges=done),
        )
        if summary.merges:
            analyze(SourceRecord, GoldenRecord)  # membership and statuses moved in bulk
        mark = lap("apply", mark)

        _progress(run, summary, "review")
        summary.sent_to_review = _review(entity_type, scored, clustering, model=model, run=run)
        lap("review", mark)
        return _finish(run, summary, started)
    except Exception as error:
        if key_rebuild is not None:  # joined (again: a no-op), so no write outlives the run
            try:
                key_rebuild.wait()
            except Exception:
                logger.exception("match run #%s: the key rebuild failed too", run.pk)
        run.status = RunStatus.FAILED
        run.error = f"{type(error).__name__}: {error}"[:5000]
        run.finished_at = timezone.now()
        run.timings = summary.timings
        run.save()
        raise


def _membership(entity_type: str, *, record_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Live record id → golden ID, of every record or of `record_ids`."""
    records = SourceRecord.objects.filter(
        entity_type=entity_type, deleted=False, golden__isnull=False
    )
    keep = None
    if record_ids is not None:
        records, keep = narrowed(records, "id", record_ids)
    rows = records.values_list("pk", "golden_id")
    return {pk: golden for pk, golden in rows if keep is None or pk in keep}


def _created_at(golden_ids: set[str]) -> dict[str, int]:
    """The order of creation of the golden records clustering has to order (those joining
    others): each one's rank by (created_at, id), which orders them as their creation times
    do, without reading a timestamp per record."""
    goldens, keep = narrowed(GoldenRecord.objects.all(), "id", golden_ids)
    ordered: Iterable[str] = goldens.order_by("created_at", "id").values_list("id", flat=True)
    if keep is not None:
        ordered = [golden_id for golden_id in ordered if golden_id in keep]
    return {golden_id: rank for rank, golden_id in enumerate(ordered)}


def _review(
    entity_type: str,
    scored: pd.DataFrame,
    clustering: Clustering,
    *,
    model: MatchModel,
    run: MatchRun,
) -> int:
    """Store the candidates of the run (`matching.review`): the scored pairs whose records
    are still in two golden records after the merges — the review band, and auto-link pairs
    a constraint refused (a steward decides those, never the model). Returns the open
    candidates the run's pairs hold."""
    scored_records = set(scored["unique_id_l"].tolist()) | set(scored["unique_id_r"].tolist())
    final = _membership(entity_type, record_ids=scored_records)
    reasons = refusal_reasons(clustering.refused)
    pairs = review_pairs(_apart(scored, final), level_labels(model.settings), reasons=reasons)
    for attempt in range(1, REVIEW_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return store_candidates(
                    entity_type=entity_type, pairs=pairs, rescored=None, model=model, run=run
                ).open
        except DatabaseError as error:  # an incremental run stored one of the same pairs
            if attempt == REVIEW_ATTEMPTS or not lost_race(error, unique=(OPEN_CANDIDATE,)):
                raise
    return 0


def _apart(scored: pd.DataFrame, membership: dict[int, str]) -> pd.DataFrame:
    """Pairs still in different golden records after the merges."""
    if scored.empty:
        return scored
    left_golden = scored["unique_id_l"].map(membership)
    right_golden = scored["unique_id_r"].map(membership)
    apart = left_golden.notna() & right_golden.notna() & (left_golden != right_golden)
    return scored[apart]


def _finish(run: MatchRun, summary: MatchRunSummary, started: float) -> MatchRunSummary:
    summary.goldens_after = _active_goldens(summary.entity_type)
    summary.seconds = round(time.monotonic() - started, 3)
    run.status = RunStatus.SUCCEEDED
    run.phase = "done"
    run.records = summary.records
    run.pairs_scored = summary.pairs_scored
    run.merges = summary.merges
    run.sent_to_review = summary.sent_to_review
    run.goldens_before = summary.goldens_before
    run.goldens_after = summary.goldens_after
    run.timings = summary.timings
    run.finished_at = timezone.now()
    run.save()
    metrics.record_matching(
        entity=summary.entity_type,
        mode=metrics.BATCH,
        records=summary.records,
        merges=summary.merges,
        sent_to_review=summary.sent_to_review,
        seconds=summary.seconds,
    )
    return summary
