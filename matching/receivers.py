"""Reactions to `mdm` signals.

- A committed ingest enqueues incremental matching (on commit: a broker that is down loses
  nothing that the next batch run would not redo).
- A membership change (merge, split, link; inside its transaction) keeps candidates and
  decisions consistent in the same transaction: the candidates naming the golden records
  involved are planned again (`matching.review.replan`), a split is recorded as a keep-apart
  decision, and a steward's merge or link retires the "not a match" decisions it overrides.
"""

from __future__ import annotations

import logging

from django.conf import settings

from matching.decisions import record_split, retire_contradicted
from matching.models import CandidateStatus
from matching.review import replan
from matching.specs import SPECS
from mdm.models import LinkMethod

logger = logging.getLogger(__name__)

CHUNK = 1000  # record ids per task


def enqueue_incremental_matching(sender, *, entity_type: str, source_record_ids, **kwargs) -> None:
    """Connected to `mdm.signals.source_records_changed` (sent on commit of each ingest chunk).

    A broker that is down must not fail an ingest that already committed: the error is logged
    and the records are matched by the next batch run.
    """
    from matching.tasks import match_records_task

    if entity_type not in SPECS:
        return
    ids = sorted(set(source_record_ids))
    queue = settings.KEYSTONE_MATCH_QUEUE
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        try:
            match_records_task.apply_async(args=[entity_type, chunk], queue=queue)
        except Exception:
            if match_records_task.app.conf.task_always_eager:
                raise
            logger.exception("matching not enqueued for %d %s records", len(chunk), entity_type)


def candidates_follow_merge(sender, *, merged, method, actor, reason, **kwargs) -> None:
    """Connected to `mdm.signals.goldens_merged`: a steward's merge overrides the "not a
    match" decisions between what it joins; candidates naming the merged golden records
    move to their survivors (one per pair) or close."""
    steward = method == LinkMethod.STEWARD
    survivors = set(merged.values())
    if steward:
        retire_contradicted(golden_ids=survivors, actor=actor, reason=reason)
    replan(
        golden_ids=set(merged) | survivors,
        joined_status=CandidateStatus.LINKED if steward else CandidateStatus.SUPERSEDED,
    )


def split_is_a_decision(
    sender, *, entity_type, original, created, moved, kept, actor, reason, **kwargs
) -> None:
    """Connected to `mdm.signals.golden_split`: the two groups stay apart from now on."""
    if entity_type in SPECS:
        record_split(
            entity_type=entity_type,
            original=original,
            created=created,
            moved=moved,
            kept=kept,
            actor=actor,
            reason=reason,
        )
    replan(golden_ids={original, created})


def candidates_follow_link(
    sender, *, entity_type, record_id, source, target, method, actor, reason, **kwargs
) -> None:
    """Connected to `mdm.signals.record_linked`: as for a merge, for one record."""
    if method == LinkMethod.STEWARD:
        retire_contradicted(golden_ids={target}, actor=actor, reason=reason)
    replan(golden_ids={g for g in (source, target) if g})
