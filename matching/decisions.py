"""Steward decisions on match candidates: merge, not a match, and the evidence behind them.

A decision is a hard constraint for every later matching run:
- "match" merges the two golden records through `mdm.services.resolution.merge` (the older
  golden record keeps its ID); matching never splits a steward merge.
- "not a match" is never auto-linked again, even transitively (see `cannot_link_pairs`).

Each decision stores a fingerprint of both records' match attributes. When a record changes
so that the fingerprint no longer holds, the decision is *stale*: `reopen_stale_decisions`
puts the pair back in the review queue — it still blocks auto-linking until a steward decides
again, so a stale decision is neither silently overridden nor blocking a true match forever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet

from matching.frame import frame_from_rows
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, Verdict
from matching.specs import get_spec
from mdm.db.ids import ids_in
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, LinkMethod, SourceRecord
from mdm.services.audit import Actor, actor_label, actor_user, save_with_history
from mdm.services.resolution import merge


def evidence_fingerprint(entity_type: str, records: list[SourceRecord]) -> str:
    """SHA-256 of the match attributes of `records` (by primary key), as matching sees them."""
    spec = get_spec(entity_type)
    rows = sorted((r.pk, r.match_keys, r.attributes) for r in records)
    frame = frame_from_rows(spec, rows).to_pydict()
    return hashlib.sha256(json.dumps(frame, sort_keys=True).encode()).hexdigest()


def decide(
    *, candidate: MatchCandidate, verdict: str, actor: Actor, reason: str = ""
) -> MatchDecision:
    """Apply a steward's verdict on `candidate` and record it with its evidence."""
    if verdict not in Verdict.values:
        raise InvalidResolution(f"unknown verdict {verdict!r}: use one of {Verdict.values}")
    with transaction.atomic():
        candidate = MatchCandidate.objects.select_for_update().get(pk=candidate.pk)
        left, right = (
            SourceRecord.objects.select_related("golden", "source_system").get(pk=pk)
            for pk in (candidate.left_id, candidate.right_id)
        )
        if verdict == Verdict.MATCH:
            _merge_pair(left, right, actor=actor, reason=reason or "steward: match")
            candidate.status = CandidateStatus.LINKED
        else:
            if left.golden_id == right.golden_id:
                raise InvalidResolution(
                    f"records {left.pk} and {right.pk} are already in {left.golden_id}: "
                    "split one out instead"
                )
            candidate.status = CandidateStatus.NOT_A_MATCH
        candidate.save(update_fields=["status", "updated_at"])
        MatchDecision.objects.filter(
            left_id=candidate.left_id, right_id=candidate.right_id, is_current=True
        ).update(is_current=False)
        decision = MatchDecision(
            entity_type=candidate.entity_type,
            left_id=candidate.left_id,
            right_id=candidate.right_id,
            verdict=verdict,
            evidence=evidence_fingerprint(candidate.entity_type, [left, right]),
            candidate=candidate,
            decided_by=actor_user(actor),
            actor=actor_label(actor),
            reason=reason,
        )
        save_with_history(decision, actor=actor, reason=reason or verdict)
    return decision


def _merge_pair(left: SourceRecord, right: SourceRecord, *, actor: Actor, reason: str) -> None:
    if left.golden_id == right.golden_id:
        return
    survivor, loser = sorted(
        GoldenRecord.objects.filter(pk__in=[left.golden_id, right.golden_id]),
        key=lambda g: (g.created_at, g.pk),
    )
    merge(survivor=survivor, loser=loser, actor=actor, reason=reason, method=LinkMethod.STEWARD)


def _touching(
    decisions: QuerySet[MatchDecision], record_ids: Iterable[int] | None
) -> QuerySet[MatchDecision]:
    if record_ids is None:
        return decisions
    ids = list(record_ids)  # one array parameter per side on PostgreSQL (`ids_in`)
    return decisions.filter(
        ids_in(MatchDecision, "left", ids) | ids_in(MatchDecision, "right", ids)
    )


def cannot_link_pairs(
    entity_type: str, *, record_ids: Iterable[int] | None = None
) -> set[tuple[int, int]]:
    """Record pairs a steward said are not a match — stale or not, they block auto-linking.
    With `record_ids`, only the pairs naming one of those records."""
    decisions = MatchDecision.objects.filter(
        entity_type=entity_type, verdict=Verdict.NOT_A_MATCH, is_current=True
    )
    return set(_touching(decisions, record_ids).values_list("left_id", "right_id"))


def reopen_stale_decisions(entity_type: str, *, record_ids: Iterable[int] | None = None) -> int:
    """Return to the review queue every "not a match" pair whose evidence changed since the
    decision (with `record_ids`: only pairs naming one of those records). The decision stays
    current (and keeps blocking auto-links) until re-decided."""
    decisions = list(
        _touching(
            MatchDecision.objects.filter(
                entity_type=entity_type, verdict=Verdict.NOT_A_MATCH, is_current=True
            ),
            record_ids,
        ).select_related("candidate")
    )
    if not decisions:
        return 0
    record_ids = {d.left_id for d in decisions} | {d.right_id for d in decisions}
    records = SourceRecord.objects.in_bulk(record_ids)
    reopened = []
    for decision in decisions:
        pair = [records[decision.left_id], records[decision.right_id]]
        if decision.evidence == evidence_fingerprint(entity_type, pair):
            continue
        candidate = decision.candidate
        if candidate is None:
            candidate = MatchCandidate.objects.filter(
                left_id=decision.left_id, right_id=decision.right_id
            ).first()
        if candidate is not None and candidate.status != CandidateStatus.OPEN:
            candidate.status = CandidateStatus.OPEN
            reopened.append(candidate)
    MatchCandidate.objects.bulk_update(reopened, ["status"], batch_size=1000)
    return len(reopened)
