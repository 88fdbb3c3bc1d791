"""Reactions to `mdm` signals.

- A committed ingest starts matching its match requests (rows written with the change: a
  broker that is down delays matching, the sweep sends them later).
- A membership change (merge, split, link; inside its transaction) keeps candidates and
  decisions consistent in the same transaction: the candidates naming the golden records
  involved are planned again (`matching.review.replan`), a split is recorded as a keep-apart
  decision, and a steward's merge or link retires the "not a match" decisions it overrides.
"""

from __future__ import annotations

import logging

from matching.decisions import record_split, retire_contradicted
from matching.models import CandidateStatus
from matching.review import replan
from matching.specs import SPECS
from mdm.models import LinkMethod

logger = logging.getLogger(__name__)


def enqueue_incremental_matching(sender, *, match_request_ids=(), **kwargs) -> None:
    """Connected to `mdm.signals.source_records_changed` (sent on commit of each ingest chunk).

    Only a nudge: the requests are rows written with the change, so a broker that is down
    loses nothing — the sweep (`matching.tasks.sweep_match_requests`) sends them later. In
    eager mode (no broker) the task runs here, in process, right after the commit.
    """
    from matching.tasks import enqueue_match_requests

    enqueue_match_requests(list(match_request_ids))


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
