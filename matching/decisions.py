"""Steward decisions about golden records — merge, not a match, split — and their evidence.

A decision binds the members both golden records have when it is made (`MatchDecisionRecord`,
each record on its side), and holds for every later matching run, batch or incremental:
- "match" merges the two golden records through `mdm.services.resolution.merge` (the older
  keeps its ID); matching never splits a steward merge.
- "not a match" keeps every record of one side apart from every record of the other, even
  transitively (`cannot_link_pairs`), however the golden records change later (a member
  split off, a member deleted at the source); no candidate between them is opened again
  (`kept_apart`, read by `matching.review`).
- a split (`record_split`, called inside the split's transaction) is a "not a match" between
  the two groups it creates.

Each decision stores a fingerprint of all its records' match attributes. When a record
changes so that the fingerprint no longer holds, the decision is *stale*: the pair of golden
records returns to the review queue (`reopen_stale_decisions`, `matching.review`) — it still
blocks auto-linking until a steward decides again, so a stale decision is neither silently
overridden nor blocking a true match forever. A steward merge of records a "not a match"
keeps apart retires it (`retire_contradicted`); a split retires the "match" decisions whose
pair it separates.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet

from matching.frame import frame_from_rows
from matching.models import (
    CandidateStatus,
    DecisionOrigin,
    DecisionSide,
    MatchCandidate,
    MatchDecision,
    MatchDecisionRecord,
    Verdict,
)
from matching.specs import get_spec
from mdm.db.ids import ids_in
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, LinkMethod, SourceRecord
from mdm.services.audit import Actor, actor_label, actor_user, save_with_history
from mdm.services.golden import lock_goldens
from mdm.services.resolution import merge

# (record id, match keys, attributes): what the evidence fingerprint covers
EvidenceRow = tuple[int, dict, dict]


def evidence_fingerprint(entity_type: str, records: Iterable[SourceRecord | EvidenceRow]) -> str:
    """SHA-256 of the match attributes of `records` (by primary key), as matching sees them."""
    spec = get_spec(entity_type)
    rows = sorted(
        r if isinstance(r, tuple) else (r.pk, r.match_keys, r.attributes) for r in records
    )
    frame = frame_from_rows(spec, rows).to_pydict()
    return hashlib.sha256(json.dumps(frame, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------------- writes


def decide(
    *, candidate: MatchCandidate, verdict: str, actor: Actor, reason: str = ""
) -> MatchDecision:
    """Apply a steward's verdict on `candidate` — about the golden records its two records
    belong to now — and record it with the members of both and their evidence."""
    if verdict not in Verdict.values:
        raise InvalidResolution(f"unknown verdict {verdict!r}: use one of {Verdict.values}")
    with transaction.atomic():
        candidate = MatchCandidate.objects.select_for_update().get(pk=candidate.pk)
        left, right = (
            SourceRecord.objects.select_related("golden").get(pk=pk)
            for pk in (candidate.left_id, candidate.right_id)
        )
        if left.golden_id is None or right.golden_id is None:
            raise InvalidResolution("a deleted record that never had a golden record")
        lock_goldens([left.golden_id, right.golden_id])
        members = _members([left.golden_id, right.golden_id])
        sides = (members[left.golden_id], members[right.golden_id])
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
        return _record(
            entity_type=candidate.entity_type,
            pair=(left.pk, right.pk),
            goldens=(left.golden_id, right.golden_id),
            sides=sides,
            verdict=verdict,
            origin=DecisionOrigin.CANDIDATE,
            candidate=candidate,
            actor=actor,
            reason=reason,
        )


def record_split(
    *,
    entity_type: str,
    original: str,
    created: str,
    moved: Collection[int],
    kept: Collection[int],
    actor: Actor,
    reason: str,
) -> MatchDecision:
    """A split is a steward's "not a match" between the records moved to `created` and the
    records kept in `original`. It retires the current "match" decisions whose pair it
    separates. Called inside the split's transaction."""
    rows = {
        pk: (pk, keys, attributes)
        for pk, keys, attributes in SourceRecord.objects.filter(
            ids_in(SourceRecord, "id", [*moved, *kept])
        ).values_list("pk", "match_keys", "attributes")
    }
    separated = MatchDecision.objects.filter(
        (
            ids_in(MatchDecision, "left", moved) & ids_in(MatchDecision, "right", kept)
            | ids_in(MatchDecision, "left", kept) & ids_in(MatchDecision, "right", moved)
        ),
        verdict=Verdict.MATCH,
        is_current=True,
    )
    _retire(separated, actor=actor, reason=reason or "split")
    return _record(
        entity_type=entity_type,
        pair=(min(moved), min(kept)),
        goldens=(created, original),
        sides=([rows[pk] for pk in moved], [rows[pk] for pk in kept]),
        verdict=Verdict.NOT_A_MATCH,
        origin=DecisionOrigin.SPLIT,
        candidate=None,
        actor=actor,
        reason=reason,
    )


def retire_contradicted(*, golden_ids: Iterable[str], actor: Actor, reason: str) -> int:
    """After a steward put records together (a merge, a link into `golden_ids`): the current
    "not a match" decisions with records of both sides in one of these golden records no
    longer hold. Retires them; returns how many."""
    golden_ids = set(golden_ids)
    if not golden_ids:
        return 0
    sides: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    rows = MatchDecisionRecord.objects.filter(
        record__golden_id__in=list(golden_ids),
        decision__is_current=True,
        decision__verdict=Verdict.NOT_A_MATCH,
    ).values_list("decision_id", "side", "record__golden_id")
    for decision_id, side, golden_id in rows:
        sides[decision_id][golden_id].add(side)
    contradicted = [
        decision_id
        for decision_id, by_golden in sides.items()
        if any(len(found) == 2 for found in by_golden.values())
    ]
    return _retire(MatchDecision.objects.filter(pk__in=contradicted), actor=actor, reason=reason)


def _merge_pair(left: SourceRecord, right: SourceRecord, *, actor: Actor, reason: str) -> None:
    if left.golden_id == right.golden_id:
        return
    survivor, loser = sorted(
        GoldenRecord.objects.filter(pk__in=[left.golden_id, right.golden_id]),
        key=lambda g: (g.created_at, g.pk),
    )
    merge(survivor=survivor, loser=loser, actor=actor, reason=reason, method=LinkMethod.STEWARD)


def _members(golden_ids: list[str]) -> dict[str, list[EvidenceRow]]:
    """Every member (live or deleted) of these golden records, as evidence rows."""
    members: dict[str, list[EvidenceRow]] = {golden_id: [] for golden_id in golden_ids}
    for golden_id, pk, keys, attributes in (
        SourceRecord.objects.filter(golden_id__in=golden_ids)
        .order_by("pk")
        .values_list("golden_id", "pk", "match_keys", "attributes")
    ):
        members[golden_id].append((pk, keys, attributes))
    return members


def _retire(decisions: QuerySet[MatchDecision], *, actor: Actor, reason: str) -> int:
    """Make `decisions` non-current, each with a history row (a decision's own `actor`
    column is the decider's, so rows are saved one by one: few decisions retire at once)."""
    retired = list(decisions)
    for decision in retired:
        decision.is_current = False
        save_with_history(decision, actor=actor, reason=reason, update_fields=["is_current"])
    return len(retired)


def _record(
    *,
    entity_type: str,
    pair: tuple[int, int],
    goldens: tuple[str, str],
    sides: tuple[list[EvidenceRow], list[EvidenceRow]],
    verdict: str,
    origin: str,
    candidate: MatchCandidate | None,
    actor: Actor,
    reason: str,
) -> MatchDecision:
    """Store a decision about `pair` (one record of each side) binding the records of both
    `sides`; a current decision on the same pair, or on the same candidate, is replaced."""
    if pair[0] > pair[1]:
        pair, goldens, sides = pair[::-1], goldens[::-1], sides[::-1]
    same = Q(left_id=pair[0], right_id=pair[1])
    if candidate is not None:
        same |= Q(candidate=candidate)
    _retire(
        MatchDecision.objects.filter(same, is_current=True),
        actor=actor,
        reason=reason or "decided again",
    )
    decision = MatchDecision(
        entity_type=entity_type,
        left_id=pair[0],
        right_id=pair[1],
        left_golden_id=goldens[0],
        right_golden_id=goldens[1],
        verdict=verdict,
        origin=origin,
        evidence=evidence_fingerprint(entity_type, [*sides[0], *sides[1]]),
        candidate=candidate,
        decided_by=actor_user(actor),
        actor=actor_label(actor),
        reason=reason,
    )
    save_with_history(decision, actor=actor, reason=reason or verdict)
    MatchDecisionRecord.objects.bulk_create(
        [
            MatchDecisionRecord(decision=decision, record_id=row[0], side=side)
            for side, rows in zip((DecisionSide.LEFT, DecisionSide.RIGHT), sides, strict=True)
            for row in rows
        ],
        batch_size=1000,
    )
    return decision


# ---------------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class KeptApart:
    """A current "not a match" decision: its records on each side with the golden record
    each belongs to now (None: deleted, or never had one), and whether its evidence changed
    since (stale)."""

    decision_id: int
    candidate_id: int | None
    left: Mapping[int, str | None]
    right: Mapping[int, str | None]
    stale: bool


def kept_apart(
    entity_type: str, *, record_ids: Iterable[int] | None = None, evidence: bool = True
) -> list[KeptApart]:
    """The current "not a match" decisions of `entity_type` (with `record_ids`: those binding
    one of these records), in one query; `evidence=False` skips the staleness check (every
    decision is then reported as not stale)."""
    decisions = MatchDecisionRecord.objects.filter(
        decision__entity_type=entity_type,
        decision__verdict=Verdict.NOT_A_MATCH,
        decision__is_current=True,
    )
    if record_ids is not None:
        record_ids = list(record_ids)
        if not record_ids:
            return []
        touching = MatchDecisionRecord.objects.filter(
            ids_in(MatchDecisionRecord, "record", record_ids)
        ).values("decision_id")
        decisions = decisions.filter(decision_id__in=touching)
    fields = ["decision_id", "decision__candidate_id", "side", "record_id", "record__golden_id"]
    fields += ["record__deleted"]
    if evidence:
        fields += ["decision__evidence", "record__match_keys", "record__attributes"]
    bound: dict[int, dict] = {}
    for row in decisions.order_by("decision_id", "record_id").values_list(*fields):
        decision_id, candidate_id, side, record_id, golden_id, deleted, *proof = row
        entry = bound.setdefault(
            decision_id,
            {"candidate": candidate_id, "left": {}, "right": {}, "rows": [], "evidence": ""},
        )
        entry[side][record_id] = None if deleted else golden_id
        if evidence:
            entry["evidence"] = proof[0]
            entry["rows"].append((record_id, proof[1], proof[2]))
    return [
        KeptApart(
            decision_id=decision_id,
            candidate_id=entry["candidate"],
            left=entry["left"],
            right=entry["right"],
            stale=evidence
            and entry["evidence"] != evidence_fingerprint(entity_type, entry["rows"]),
        )
        for decision_id, entry in bound.items()
    ]


def cannot_link_pairs(
    entity_type: str,
    *,
    record_ids: Iterable[int] | None = None,
    membership: Mapping[int, str] | None = None,
    decisions: Iterable[KeptApart] | None = None,
) -> set[tuple[int, int]]:
    """Record pairs steward decisions keep apart — stale or not, they block auto-linking.
    With `record_ids`, the decisions binding one of those records; with `decisions`, those
    (already read by the caller, `kept_apart`). With `membership` (record → golden record,
    as the caller's clustering sees it), one record per golden record and side stands for
    the others (clustering keeps golden records apart), so a decision between two large
    golden records costs a handful of pairs, not their product."""
    if decisions is None:
        decisions = kept_apart(entity_type, record_ids=record_ids, evidence=False)
    pairs: set[tuple[int, int]] = set()
    for decision in decisions:
        left, right = (
            _standing_for(decision.left, membership),
            _standing_for(decision.right, membership),
        )
        pairs.update((min(a, b), max(a, b)) for a in left for b in right if a != b)
    return pairs


def _standing_for(
    side: Mapping[int, str | None], membership: Mapping[int, str] | None
) -> list[int]:
    if membership is None:
        return list(side)
    first: dict[str, int] = {}
    for record_id in side:
        golden_id = membership.get(record_id)
        if golden_id is not None:
            first.setdefault(golden_id, record_id)
    return list(first.values())


def reopen_stale_decisions(
    entity_type: str,
    *,
    record_ids: Iterable[int] | None = None,
    decisions: Iterable[KeptApart] | None = None,
) -> int:
    """Return to the review queue the candidate of every "not a match" whose evidence changed
    since the decision (with `record_ids`: of decisions binding one of those records; with
    `decisions`: of those, read by the caller with their evidence), when its two records
    are still in two golden records and no other candidate between those is open. The
    decision stays current (and keeps blocking auto-links) until re-decided."""
    if decisions is None:
        decisions = kept_apart(entity_type, record_ids=record_ids)
    stale = [d for d in decisions if d.stale]
    candidate_ids = [d.candidate_id for d in stale if d.candidate_id is not None]
    if not candidate_ids:
        return 0
    candidates = list(
        MatchCandidate.objects.filter(pk__in=candidate_ids).exclude(status=CandidateStatus.OPEN)
    )
    records = {c.left_id for c in candidates} | {c.right_id for c in candidates}
    golden_of = dict(
        SourceRecord.objects.filter(
            ids_in(SourceRecord, "id", records), deleted=False, golden__isnull=False
        ).values_list("pk", "golden_id")
    )
    reopened = []
    open_pairs = set(
        MatchCandidate.objects.filter(
            entity_type=entity_type, status=CandidateStatus.OPEN
        ).values_list("left_golden_id", "right_golden_id")
        if candidates
        else ()
    )
    for candidate in candidates:
        a, b = golden_of.get(candidate.left_id), golden_of.get(candidate.right_id)
        if a is None or b is None or a == b or (min(a, b), max(a, b)) in open_pairs:
            continue
        if a > b:  # merges turned the pair round: the evidence follows its records
            candidate.left_id, candidate.right_id = candidate.right_id, candidate.left_id
            candidate.explanation = {
                name: {**item, "left": item.get("right"), "right": item.get("left")}
                for name, item in (candidate.explanation or {}).items()
            }
            candidate.pairs = []
            a, b = b, a
        candidate.left_golden_id, candidate.right_golden_id = a, b
        candidate.status = CandidateStatus.OPEN
        open_pairs.add((a, b))
        reopened.append(candidate)
    fields = ["left_golden", "right_golden", "left", "right", "explanation", "pairs", "status"]
    MatchCandidate.objects.bulk_update(reopened, fields, batch_size=1000)
    return len(reopened)
