"""Review: the one place that plans and stores match candidates.

A candidate is a pair of golden records a steward should decide on. Its evidence is the
best-scoring pair of their member records (probability, match weight, explanation); every
other scored member pair is listed with it. At most one candidate per pair of golden records
is open (a database constraint holds it).

Three callers, one rule:

- a batch run: every pair it scored in the review band, or above it but refused by a
  constraint; every open candidate of the entity type is planned again (`rescored=None`:
  every record was scored, stored pairs are replaced by the new ones);
- incremental matching: the pairs of the changed records (`rescored`); the open candidates
  of their golden records are planned again, keeping their stored pairs that name no
  changed record;
- a membership change (`matching.receivers`, inside the transaction of the merge, split or
  link): nothing is scored; the open candidates naming the golden records involved are
  planned again from their stored pairs, under the new membership.

For one pair of golden records, P:

- its pairs are the new ones plus the kept stored pairs, each counted under the golden
  records its records belong to now; a pair whose records share a golden record, or whose
  record is gone, drops out;
- decided: when a current "not a match" decision (a steward's, or a split's) keeps P apart,
  no candidate is open for P. When that decision's evidence changed since (stale), P is
  reviewed again: its pairs open a candidate, with the reason, and an open candidate stays
  open (still never auto-linked: `matching.decisions`);
- open: pairs left → one open candidate: an open one (the oldest, if merges brought several
  together) is updated, else the last superseded one of P is reopened, else one is created;
- superseded: no pairs left → the open candidate is closed (as "linked" when a steward
  merged its golden records, as "superseded" otherwise).

Writes are set-based (`mdm.db.update.update_rows`): candidates that close are written before
those that open, so the one-open-candidate constraint never sees two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.utils import timezone

from matching.clustering import ScoredPair
from matching.decisions import KeptApart, kept_apart
from matching.models import CandidateStatus, MatchCandidate, MatchModel, MatchRun
from matching.scoring import explanation
from mdm.db.ids import ids_in
from mdm.db.update import update_rows
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord

GoldenPair = tuple[str, str]

STALE_DECISION = "a steward kept these apart; their records changed since"
REASON_LENGTH = 255

FOREIGN_KEYS = ("left_golden", "right_golden", "left", "right", "model", "run")
# The columns a planned candidate writes (besides `updated_at`).
WRITTEN = (
    "left_golden",
    "right_golden",
    "left",
    "right",
    "probability",
    "match_weight",
    "explanation",
    "pairs",
    "reason",
    "status",
    "model",
    "run",
)


@dataclass(frozen=True)
class ReviewPair:
    """A scored pair of source records for review: `left` < `right` as scored, or turned so
    `left` is in the candidate's left golden record."""

    left: int
    right: int
    probability: float
    match_weight: float
    explanation: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def key(self) -> tuple[int, int]:
        return (min(self.left, self.right), max(self.left, self.right))

    def turned(self) -> ReviewPair:
        """The same pair seen from the other side (explanation values swapped)."""
        turned = {
            name: {**item, "left": item.get("right"), "right": item.get("left")}
            if isinstance(item, dict)
            else item
            for name, item in self.explanation.items()
        }
        return ReviewPair(
            self.right, self.left, self.probability, self.match_weight, turned, self.reason
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "left": self.left,
            "right": self.right,
            "probability": self.probability,
            "match_weight": self.match_weight,
            "explanation": self.explanation,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ReviewPair:
        return cls(
            int(value["left"]),
            int(value["right"]),
            float(value["probability"]),
            float(value["match_weight"]),
            dict(value.get("explanation") or {}),
            str(value.get("reason") or ""),
        )


def _rank(pair: ReviewPair) -> tuple:
    return (-pair.probability, -pair.match_weight, pair.key)


def candidate_pairs(candidate: MatchCandidate) -> list[ReviewPair]:
    """Every scored member pair the candidate lists, best first (the best one is its
    evidence: its explanation is the candidate's)."""
    listed = [ReviewPair.from_json(p) for p in candidate.pairs or []]
    if not listed:  # stored before pairs were listed: the evidence alone
        return [
            ReviewPair(
                candidate.left_id,
                candidate.right_id,
                candidate.probability,
                candidate.match_weight,
                dict(candidate.explanation or {}),
            )
        ]
    best, *others = listed
    return [
        ReviewPair(
            best.left,
            best.right,
            best.probability,
            best.match_weight,
            dict(candidate.explanation or {}),
            best.reason,
        ),
        *others,
    ]


def review_pairs(
    scored: pd.DataFrame | Sequence[Mapping[str, Any]],
    labels: dict[str, dict[int, str]],
    *,
    reasons: Mapping[tuple[int, int], str] | None = None,
) -> list[ReviewPair]:
    """Scored pairs (Splink's columns, intermediate ones kept: a DataFrame, or one mapping
    per pair) as review pairs, each with its explanation and, for a pair a constraint
    refused, the reason."""
    if len(scored) == 0:  # reading a wide frame's rows costs milliseconds even when empty
        return []
    reasons = reasons or {}
    rows = scored.to_dict("records") if isinstance(scored, pd.DataFrame) else scored
    pairs = []
    for row in rows:
        left, right = int(row["unique_id_l"]), int(row["unique_id_r"])
        pair = ReviewPair(
            left,
            right,
            float(row["match_probability"]),
            float(row["match_weight"]),
            explanation(row, labels),
            reasons.get((min(left, right), max(left, right)), ""),
        )
        pairs.append(pair if left < right else pair.turned())
    return pairs


def refusal_reasons(refused: Iterable[ScoredPair]) -> dict[tuple[int, int], str]:
    """Why clustering refused each pair (`ScoredPair.reason`), by (lower, higher) record id."""
    return {(min(p.left, p.right), max(p.left, p.right)): p.reason for p in refused}


@dataclass
class Stored:
    """What storing did: open candidates the planned pairs hold, and the changes made."""

    open: int = 0
    created: int = 0
    updated: int = 0
    reopened: int = 0
    superseded: int = 0


def store_candidates(
    *,
    entity_type: str,
    pairs: Sequence[ReviewPair] = (),
    rescored: Collection[int] | None,
    goldens: Collection[str] = (),
    model: MatchModel | None = None,
    run: MatchRun | None = None,
    joined_status: str = CandidateStatus.SUPERSEDED,
    membership: Mapping[int, str] | None = None,
) -> Stored:
    """Plan and store the candidates of `entity_type` for `pairs` (see the module rule).

    `rescored`: the records whose pairs were all scored again (their stored pairs are
    replaced by `pairs`), or None when every record was (a batch run: every open candidate
    of the entity type is planned again). Otherwise the open candidates planned again are
    those naming a golden record of a rescored record, of a record in `pairs`, or in
    `goldens`. `joined_status` closes a candidate whose two golden records became one.
    `membership`: live record → its golden record now, as the caller read it in this
    transaction under the locks of those golden records (incremental matching), for the
    records it covers; the others are read. Call inside the transaction that changed
    membership, if any."""
    fresh = {p.key: p for p in pairs}
    named = {n for p in pairs for n in (p.left, p.right)}
    known = dict(membership or {})
    if rescored is None:
        membership = known
        scope = list(
            MatchCandidate.objects.filter(entity_type=entity_type, status=CandidateStatus.OPEN)
        )
    else:
        wanted = named | set(rescored)
        membership = {pk: known[pk] for pk in wanted if pk in known}
        membership.update(_membership(wanted - set(known)))
        scope_goldens = set(goldens) | set(membership.values())
        scope = _open_naming(scope_goldens, entity_type=entity_type)
    kept = _kept_pairs(scope, rescored)
    every = {**kept, **fresh}
    records = {n for key in every for n in key}
    records |= {n for c in scope for p in candidate_pairs(c) for n in (p.left, p.right)}
    membership.update({pk: known[pk] for pk in records if pk in known})
    membership.update(_membership(records - set(membership) - set(known)))
    decisions = kept_apart(entity_type, record_ids=None if rescored is None else records)
    blocked, stale = _separated(decisions)
    plan = _plan(every, membership, blocked=blocked, stale=stale)
    survivors = _survivors({g for c in scope for g in (c.left_golden_id, c.right_golden_id)})
    for candidate in scope:  # back in review by a stale decision: stays open on its evidence
        golden_pair = _resolved(candidate, survivors)
        if golden_pair in stale and golden_pair not in plan:
            own = {p.key: p for p in candidate_pairs(candidate)}
            still = _plan(own, membership, blocked=blocked, stale=stale).get(golden_pair)
            if still is not None:
                plan[golden_pair] = still
    return _write(
        entity_type,
        plan,
        scope,
        survivors,
        fresh=set(fresh),
        model=model,
        run=run,
        joined_status=joined_status,
    )


def replan(*, golden_ids: Iterable[str], joined_status: str = CandidateStatus.SUPERSEDED) -> Stored:
    """Plan again, from their stored pairs, the open candidates naming any of `golden_ids`
    (whose membership just changed). Called inside the transaction of the change."""
    scope = _open_naming(set(golden_ids))
    done = Stored()
    by_entity: dict[str, set[str]] = defaultdict(set)
    for candidate in scope:
        by_entity[candidate.entity_type] |= {candidate.left_golden_id, candidate.right_golden_id}
    for entity_type, named in by_entity.items():
        stored = store_candidates(
            entity_type=entity_type, rescored=(), goldens=named, joined_status=joined_status
        )
        for name in ("open", "created", "updated", "reopened", "superseded"):
            setattr(done, name, getattr(done, name) + getattr(stored, name))
    return done


# ---------------------------------------------------------------------------------- reads


def _membership(record_ids: Iterable[int]) -> dict[int, str]:
    """Live record id → its golden record now."""
    record_ids = list(record_ids)
    if not record_ids:
        return {}
    return dict(
        SourceRecord.objects.filter(
            ids_in(SourceRecord, "id", record_ids), deleted=False, golden__isnull=False
        ).values_list("pk", "golden_id")
    )


def _open_naming(golden_ids: set[str], *, entity_type: str | None = None) -> list[MatchCandidate]:
    if not golden_ids:
        return []
    candidates = MatchCandidate.objects.filter(
        ids_in(MatchCandidate, "left_golden", golden_ids)
        | ids_in(MatchCandidate, "right_golden", golden_ids),
        status=CandidateStatus.OPEN,
    )
    if entity_type is not None:
        candidates = candidates.filter(entity_type=entity_type)
    return list(candidates.order_by("pk"))


def _kept_pairs(
    scope: Sequence[MatchCandidate], rescored: Collection[int] | None
) -> dict[tuple[int, int], ReviewPair]:
    """The stored pairs of `scope` that no rescoring replaces."""
    if rescored is None:
        return {}
    rescored = set(rescored)
    kept: dict[tuple[int, int], ReviewPair] = {}
    for candidate in scope:
        for pair in candidate_pairs(candidate):
            if pair.left not in rescored and pair.right not in rescored:
                kept.setdefault(pair.key, pair)
    return kept


def _survivors(golden_ids: set[str]) -> dict[str, str]:
    """Merged golden ID → the golden record it redirects to (redirects are one hop)."""
    if not golden_ids:
        return {}
    return dict(
        GoldenRecord.objects.filter(
            ids_in(GoldenRecord, "id", golden_ids), status=GoldenStatus.MERGED
        ).values_list("id", "merged_into_id")
    )


# ------------------------------------------------------------------------------- planning


def _separated(decisions: Sequence[KeptApart]) -> tuple[set[GoldenPair], set[GoldenPair]]:
    """Pairs of golden records kept apart by a current decision: (blocked — by a decision
    whose evidence holds; stale — only by decisions whose evidence changed)."""
    blocked: set[GoldenPair] = set()
    stale: set[GoldenPair] = set()
    for decision in decisions:
        left = {g for g in decision.left.values() if g}
        right = {g for g in decision.right.values() if g}
        for a in left:
            for b in right:
                if a != b:
                    (stale if decision.stale else blocked).add((min(a, b), max(a, b)))
    return blocked, stale - blocked


@dataclass
class _Planned:
    pairs: list[ReviewPair]  # best first; each turned so `left` is in golden pair[0]
    stale: bool


def _plan(
    pairs: Mapping[tuple[int, int], ReviewPair],
    membership: Mapping[int, str],
    *,
    blocked: set[GoldenPair],
    stale: set[GoldenPair],
) -> dict[GoldenPair, _Planned]:
    """Pure: the pairs of each pair of golden records that needs a candidate (`membership`:
    record → golden record now; `blocked`/`stale`: pairs of golden records a decision keeps
    apart, see `_separated`)."""
    grouped: dict[GoldenPair, list[ReviewPair]] = defaultdict(list)
    for pair in pairs.values():
        a, b = membership.get(pair.left), membership.get(pair.right)
        if a is None or b is None or a == b:
            continue
        golden_pair = (min(a, b), max(a, b))
        if golden_pair in blocked:
            continue
        grouped[golden_pair].append(pair if a < b else pair.turned())
    return {
        golden_pair: _Planned(sorted(found, key=_rank), golden_pair in stale)
        for golden_pair, found in grouped.items()
    }


def _reason(planned: _Planned) -> str:
    reasons = [STALE_DECISION] if planned.stale else []
    for pair in planned.pairs:
        if pair.reason and pair.reason not in reasons:
            reasons.append(pair.reason)
    return "; ".join(reasons)[:REASON_LENGTH]


def _fill(
    candidate: MatchCandidate, golden_pair: GoldenPair, planned: _Planned, *, fresh, model, run
) -> None:
    best = planned.pairs[0]
    candidate.left_golden_id, candidate.right_golden_id = golden_pair
    candidate.left_id, candidate.right_id = best.left, best.right
    candidate.probability, candidate.match_weight = best.probability, best.match_weight
    candidate.explanation = best.explanation
    candidate.pairs = [
        {k: v for k, v in best.as_json().items() if k != "explanation"},
        *(p.as_json() for p in planned.pairs[1:]),
    ]
    candidate.reason = _reason(planned)
    candidate.status = CandidateStatus.OPEN
    if best.key in fresh:  # scored now: by this model, in this run
        if model is not None:
            candidate.model_id = model.pk
        if run is not None:
            candidate.run_id = run.pk


_ATTNAMES = tuple(f"{name}_id" if name in FOREIGN_KEYS else name for name in WRITTEN)


def _state(candidate: MatchCandidate) -> tuple:
    return tuple(getattr(candidate, name) for name in _ATTNAMES)


def _resolved(candidate: MatchCandidate, survivors: Mapping[str, str]) -> GoldenPair:
    """The candidate's pair of golden records as they are now (merged ones followed)."""
    a = survivors.get(candidate.left_golden_id, candidate.left_golden_id)
    b = survivors.get(candidate.right_golden_id, candidate.right_golden_id)
    return (min(a, b), max(a, b))


def _write(
    entity_type: str,
    plan: Mapping[GoldenPair, _Planned],
    scope: Sequence[MatchCandidate],
    survivors: Mapping[str, str],
    *,
    fresh: set[tuple[int, int]],
    model: MatchModel | None,
    run: MatchRun | None,
    joined_status: str,
) -> Stored:
    stored = Stored(open=len(plan))
    holder: dict[GoldenPair, MatchCandidate] = {}
    closing: list[MatchCandidate] = []
    for candidate in scope:  # oldest first: the oldest open candidate of a pair keeps it
        golden_pair = _resolved(candidate, survivors)
        if golden_pair in plan and golden_pair not in holder:
            holder[golden_pair] = candidate
            continue
        joined = golden_pair[0] == golden_pair[1]
        candidate.status = joined_status if joined else CandidateStatus.SUPERSEDED
        closing.append(candidate)
    reopen = _superseded_of([p for p in plan if p not in holder], entity_type)
    now = timezone.now()
    changed: list[MatchCandidate] = []
    created: list[MatchCandidate] = []
    for golden_pair, planned in plan.items():
        existing = holder.get(golden_pair) or reopen.get(golden_pair)
        if existing is None:
            new = MatchCandidate(entity_type=entity_type)
            _fill(new, golden_pair, planned, fresh=fresh, model=model, run=run)
            created.append(new)
            continue
        before = _state(existing)
        was_open = existing.status == CandidateStatus.OPEN
        _fill(existing, golden_pair, planned, fresh=fresh, model=model, run=run)
        if _state(existing) != before:
            existing.updated_at = now
            changed.append(existing)
            stored.updated += was_open
            stored.reopened += not was_open
    for candidate in closing:
        candidate.updated_at = now
    update_rows(MatchCandidate, closing, ["status", "updated_at"])
    update_rows(MatchCandidate, changed, [*WRITTEN, "updated_at"])
    MatchCandidate.objects.bulk_create(created, batch_size=1000)
    stored.created, stored.superseded = len(created), len(closing)
    return stored


def _superseded_of(
    golden_pairs: Sequence[GoldenPair], entity_type: str
) -> dict[GoldenPair, MatchCandidate]:
    """The last superseded candidate of each of these pairs of golden records."""
    if not golden_pairs:
        return {}
    wanted = set(golden_pairs)
    found: dict[GoldenPair, MatchCandidate] = {}
    rows = MatchCandidate.objects.filter(
        ids_in(MatchCandidate, "left_golden", {a for a, _ in wanted}),
        status=CandidateStatus.SUPERSEDED,
        entity_type=entity_type,
    ).order_by("-updated_at", "-pk")
    for candidate in rows:
        golden_pair = (candidate.left_golden_id, candidate.right_golden_id)
        if golden_pair in wanted:
            found.setdefault(golden_pair, candidate)
    return found
