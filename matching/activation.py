"""Model versions: staged, compared with the active one, then activated or discarded by a
steward — never applied by the machine on its own.

A retrain (`stage_retrained`) or a threshold change (`stage_thresholds`) creates a new
`MatchModel` version that is *staged*: matching keeps using the active version. Its `diff`
says what activating it would change against the current state the active model left:

- golden records it would **merge** (its auto-links), with examples;
- golden records it would no longer hold together (**splits**): auto-linked members it scores
  below its auto-link threshold. Matching never undoes a merge by itself, so activating does
  not split them either; a steward reads them here and splits where the new model is right;
- match candidates it would **add** (golden-record pairs in its review band not in the queue)
  and **close** (open candidates it would merge or scores below its review band).

From stored pair scores where they suffice — a threshold change whose review threshold does
not go below the active one's reads the open candidates' probabilities and the auto-links'
link probabilities — else by scoring every blocked pair with the staged model (a retrain).

`activate_model` makes a staged version the active one, recorded with who, when and why (a
reason is required); the next match run applies it. `discard_model` sets it aside, likewise
recorded. The first version of an entity type is active at once: there is nothing to compare
it with and nothing matches without it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pyarrow as pa
from django.db import transaction
from django.utils import timezone

from matching.clustering import Merge, ScoredPair, cluster
from matching.decisions import cannot_link_pairs
from matching.engine import linker_for
from matching.frame import build_frame
from matching.models import (
    CandidateStatus,
    MatchCandidate,
    MatchDecision,
    MatchModel,
    ModelChange,
    Verdict,
)
from matching.scoring import active_model, thresholds_of
from matching.specs import Thresholds, get_spec, sparse
from matching.training import train
from mdm.db.ids import ids_in, narrowed
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, LinkMethod, SourceRecord
from mdm.selectors import held_dates, held_identifiers
from mdm.services.audit import Actor, actor_label, actor_user, save_with_history

EXAMPLES = 10
STORED_SCORES = "stored_scores"
RESCORED = "rescored"


# ------------------------------------------------------------------------------- versions


def steward_match_labels(entity_type: str) -> list[tuple[int, int]]:
    """Record pairs stewards decided are the same thing (current "match" decisions): the
    labels a retrain refines its m probabilities with."""
    return list(
        MatchDecision.objects.filter(
            entity_type=entity_type, verdict=Verdict.MATCH, is_current=True
        ).values_list("left_id", "right_id")
    )


def new_version(
    *,
    entity_type: str,
    settings: dict,
    training_report: dict,
    thresholds: Mapping[str, float] | None,
    change: str,
    actor: Actor,
    reason: str = "",
) -> MatchModel:
    """Store the next version of `entity_type`'s model: active when there is none yet (the
    first), else staged and compared with the active one (`diff` is filled by the caller)."""
    with transaction.atomic():
        versions = MatchModel.objects.select_for_update().filter(entity_type=entity_type)
        latest = versions.order_by("-version").first()
        current = versions.filter(is_active=True).first()
        model = MatchModel(
            entity_type=entity_type,
            version=(latest.version + 1) if latest else 1,
            settings=settings,
            training_report=training_report,
            thresholds=dict(thresholds or {}),
            change=ModelChange.FIRST if current is None else change,
            staged_by=actor_label(actor),
            staging_reason=reason,
            compared_with=current,
            is_active=current is None,
            activated_at=timezone.now() if current is None else None,
            activated_by=actor_user(actor) if current is None else None,
            activation_reason="first model" if current is None else "",
        )
        save_with_history(model, actor=actor, reason=reason or f"model: {model.change}")
    return model


def stage_retrained(
    *, entity_type: str, actor: Actor, reason: str = "", frame: pa.Table | None = None
) -> MatchModel:
    """Train a new version on the live records (with stewards' match decisions as labels) and
    stage it with the active version's thresholds, its diff computed by scoring every blocked
    pair. The first version is active at once instead."""
    spec = get_spec(entity_type)
    frame = frame if frame is not None else build_frame(spec)
    trained = train(spec, frame, match_labels=steward_match_labels(entity_type))
    current = active_model(entity_type)
    model = new_version(
        entity_type=entity_type,
        settings=trained.model,
        training_report=trained.report,
        thresholds=current.thresholds if current else {},
        change=ModelChange.RETRAIN,
        actor=actor,
        reason=reason or "retrained",
    )
    if not model.is_active:
        store_diff(model, frame=frame)
    return model


def stage_thresholds(
    *, entity_type: str, auto_link: float, review: float, actor: Actor, reason: str
) -> MatchModel:
    """Stage the active model with other thresholds (`review` ≤ p < `auto_link` is queued for
    a steward, p ≥ `auto_link` links), and compute what they would change."""
    if not 0 < review < auto_link <= 1:
        raise InvalidResolution(
            "thresholds must satisfy 0 < review < auto-link ≤ 1 "
            f"(got review {review}, auto-link {auto_link})"
        )
    current = active_model(entity_type)
    if current is None:
        raise InvalidResolution(f"no active {entity_type} model to change the thresholds of")
    model = new_version(
        entity_type=entity_type,
        settings=current.settings,
        training_report=current.training_report,
        thresholds={"auto_link": auto_link, "review": review},
        change=ModelChange.THRESHOLDS,
        actor=actor,
        reason=reason,
    )
    store_diff(model)
    return model


def _locked_staged(model: MatchModel) -> MatchModel:
    locked = MatchModel.objects.select_for_update().get(pk=model.pk)
    if locked.state != "staged":
        raise InvalidResolution(f"{locked} is {locked.state}, not staged")
    return locked


def activate_model(*, model: MatchModel, actor: Actor, reason: str) -> MatchModel:
    """Make a staged version the active one (the previous one retires), recorded with who,
    when and why. It applies from the next match run on."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidResolution("say why this model is activated (the reason is recorded)")
    with transaction.atomic():
        versions = MatchModel.objects.select_for_update().filter(entity_type=model.entity_type)
        list(versions.order_by("version").values_list("pk", flat=True))  # locked in order
        model = _locked_staged(model)
        for previous in MatchModel.objects.filter(entity_type=model.entity_type, is_active=True):
            previous.is_active = False
            save_with_history(previous, actor=actor, reason=f"retired for v{model.version}")
        model.is_active = True
        model.activated_at = timezone.now()
        model.activated_by = actor_user(actor)
        model.activation_reason = reason
        save_with_history(model, actor=actor, reason=f"activated: {reason}")
    return model


def discard_model(*, model: MatchModel, actor: Actor, reason: str) -> MatchModel:
    """Set a staged version aside for good, recorded with who, when and why."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidResolution("say why this model is discarded (the reason is recorded)")
    with transaction.atomic():
        model = _locked_staged(model)
        model.discarded_at = timezone.now()
        model.discarded_by = actor_user(actor)
        model.discard_reason = reason
        save_with_history(model, actor=actor, reason=f"discarded: {reason}")
    return model


# ----------------------------------------------------------------------------------- diff


@dataclass
class _State:
    """The current state the active model left: live membership and the open candidates."""

    membership: dict[int, str]
    open_pairs: dict[tuple[str, str], tuple[int, float]]  # golden pair -> (candidate, p)


def _golden_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _membership(entity_type: str, record_ids: Iterable[int] | None = None) -> dict[int, str]:
    records = SourceRecord.objects.filter(
        entity_type=entity_type, deleted=False, golden__isnull=False
    )
    keep = None
    if record_ids is not None:
        records, keep = narrowed(records, "id", record_ids)
    rows = records.values_list("pk", "golden_id")
    return {pk: golden for pk, golden in rows if keep is None or pk in keep}


OpenCandidate = tuple[int, str, str, float, list[dict[str, Any]]]


def _open_candidates(entity_type: str) -> list[OpenCandidate]:
    """Open candidates: (id, left golden, right golden, probability, scored member pairs)."""
    return list(
        MatchCandidate.objects.filter(entity_type=entity_type, status=CandidateStatus.OPEN)
        .order_by("-probability", "id")
        .values_list("pk", "left_golden_id", "right_golden_id", "probability", "pairs")
    )


def _state(
    entity_type: str, membership: dict[int, str], candidates: list[OpenCandidate] | None = None
) -> _State:
    candidates = _open_candidates(entity_type) if candidates is None else candidates
    open_pairs = {
        _golden_pair(left, right): (pk, probability)
        for pk, left, right, probability, _ in candidates
    }
    return _State(membership, open_pairs)


def _member_pairs(candidates: list[OpenCandidate]) -> list[ScoredPair]:
    """Every scored member pair the open candidates hold (their stored scores)."""
    return [
        ScoredPair(int(pair["left"]), int(pair["right"]), float(pair["probability"]))
        for *_, pairs in candidates
        for pair in pairs or ()
    ]


def _creation_rank(golden_ids: set[str]) -> dict[str, int]:
    goldens, keep = narrowed(GoldenRecord.objects.all(), "id", golden_ids)
    ordered = goldens.order_by("created_at", "id").values_list("id", flat=True)
    return {g: rank for rank, g in enumerate(i for i in ordered if keep is None or i in keep)}


def _cannot_link(entity_type: str, membership: dict[int, str]) -> set[tuple[int, int]]:
    return {
        pair
        for pair in cannot_link_pairs(entity_type)
        if pair[0] in membership and pair[1] in membership
    }


def _merges(
    pairs: list[ScoredPair], state: _State, auto_link: float, entity_type: str
) -> list[Merge]:
    return cluster(
        pairs=pairs,
        membership=state.membership,
        created_at=_creation_rank,
        threshold=auto_link,
        cannot_link=_cannot_link(entity_type, state.membership),
        identifiers=partial(held_identifiers, entity_type, state.membership),
        dates=partial(held_dates, entity_type, state.membership),
    ).merges


def _final(merges: list[Merge]) -> dict[str, str]:
    return {m.loser: m.survivor for m in merges}


def _stored_scores_suffice(model: MatchModel, active: MatchModel) -> bool:
    """Same scores (only thresholds differ) and no pair below the active review band can
    enter the staged one: every pair that matters has a stored score."""
    return (
        model.settings == active.settings
        and thresholds_of(model).review >= thresholds_of(active).review
    )


def compute_diff(model: MatchModel, *, frame: pa.Table | None = None) -> dict:
    """What activating `model` would change against the current state (see the module)."""
    active = model.compared_with or active_model(model.entity_type)
    if active is None:
        raise InvalidResolution(f"no active {model.entity_type} model to compare with")
    staged, current = thresholds_of(model), thresholds_of(active)
    if _stored_scores_suffice(model, active):
        plan = _plan_from_stored_scores(model.entity_type, staged, current)
        method = STORED_SCORES
    else:
        plan = _plan_by_scoring(model, staged, frame)
        method = RESCORED
    diff = _described(plan)
    diff.update(
        method=method,
        computed_at=timezone.now().isoformat(),
        compared_with=active.version,
        thresholds={
            "active": {"auto_link": current.auto_link, "review": current.review},
            "staged": {"auto_link": staged.auto_link, "review": staged.review},
        },
    )
    return diff


def store_diff(model: MatchModel, *, frame: pa.Table | None = None) -> MatchModel:
    model.diff = compute_diff(model, frame=frame)
    MatchModel.objects.filter(pk=model.pk).update(diff=model.diff)
    return model


@dataclass
class _Plan:
    merges: list[Merge]
    splits: dict[str, list[tuple[int, float | None]]]  # golden -> members no longer held
    added: dict[tuple[str, str], float]
    closed: dict[tuple[str, str], tuple[int, float, str]]  # pair -> (candidate, p, why)
    records: int = 0


def _sparse_records(entity_type: str, record_ids: Iterable[int] | None) -> set[int]:
    """The live records among `record_ids` (every one: None) that are sparse
    (`matching.specs.sparse`): a pair of two of them links at the sparse bar."""
    spec = get_spec(entity_type)
    if not spec.telling:
        return set()
    frame = build_frame(spec, record_ids=record_ids).to_pandas()
    return set(frame["unique_id"][sparse(spec, frame)].astype(int).tolist())


def _with_bars(pairs: list[ScoredPair], staged: Thresholds, sparse_ids: set[int]) -> list:
    """`pairs` each with its auto-link bar under `staged` (`Thresholds.auto_link_bars`, from
    the records' own attributes: a stored score keeps no attribute values)."""
    return [
        replace(
            pair,
            bar=staged.sparse_bar
            if pair.left in sparse_ids and pair.right in sparse_ids
            else staged.auto_link,
        )
        for pair in pairs
    ]


def _plan_from_stored_scores(entity_type: str, staged: Thresholds, current: Thresholds) -> _Plan:
    """Open candidates' probabilities and auto-links' link probabilities, read under the
    staged thresholds (same model, so the same scores)."""
    candidates = _open_candidates(entity_type)
    pairs = _member_pairs(candidates)
    records = {r for pair in pairs for r in (pair.left, pair.right)}
    if staged.sparse_bar != staged.auto_link and records:
        pairs = _with_bars(pairs, staged, _sparse_records(entity_type, records))
    state = _state(entity_type, _membership(entity_type, records), candidates)
    merges = _merges(pairs, state, staged.auto_link, entity_type)
    final = _final(merges)
    closed = {}
    for pair, (pk, probability) in state.open_pairs.items():
        if final.get(pair[0], pair[0]) == final.get(pair[1], pair[1]):
            closed[pair] = (pk, probability, "would merge")
        elif probability < staged.review:
            closed[pair] = (pk, probability, "below the review threshold")
    splits: dict[str, list[tuple[int, float | None]]] = defaultdict(list)
    if staged.auto_link > current.auto_link or staged.sparse_bar > current.sparse_bar:
        weaker = list(
            SourceRecord.objects.filter(
                entity_type=entity_type,
                deleted=False,
                link_method=LinkMethod.AUTO,
                link_probability__lt=max(staged.auto_link, staged.sparse_bar),
            ).values_list("golden_id", "pk", "link_probability")
        )
        # A sparse record's link is held at the sparse bar (its link probability is stored,
        # not the record it linked to: read as a link between two sparse records).
        sparse_ids = (
            _sparse_records(entity_type, [pk for _, pk, _ in weaker])
            if weaker and staged.sparse_bar != staged.auto_link
            else set()
        )
        for golden_id, pk, link_probability in weaker:
            bar = staged.sparse_bar if pk in sparse_ids else staged.auto_link
            if link_probability is None or link_probability < bar:
                splits[golden_id].append((pk, link_probability))
    return _Plan(merges=merges, splits=dict(splits), added={}, closed=closed)


def _plan_by_scoring(model: MatchModel, staged: Thresholds, frame: pa.Table | None) -> _Plan:
    """Score every blocked pair of the live records with the staged model and plan as a batch
    run would (constraints included), against the current membership and queue."""
    entity_type = model.entity_type
    frame = frame if frame is not None else build_frame(get_spec(entity_type))
    with linker_for(frame, dict(model.settings)) as linker:
        scored = linker.inference.predict(
            threshold_match_probability=staged.review, warning_mode="never"
        ).as_pandas_dataframe()
    pairs = [
        ScoredPair(int(left), int(right), float(p), bar=float(bar))
        for left, right, p, bar in zip(
            scored["unique_id_l"],
            scored["unique_id_r"],
            scored["match_probability"],
            staged.auto_link_bars(get_spec(entity_type), scored),
            strict=True,
        )
    ]
    state = _state(entity_type, _membership(entity_type))
    membership = state.membership
    merges = _merges(pairs, state, staged.auto_link, entity_type)
    final = _final(merges)

    def settled(golden_id: str) -> str:
        return final.get(golden_id, golden_id)

    review: dict[tuple[str, str], float] = {}
    held = defaultdict(list)  # golden -> pairs inside it at or above auto-link
    for pair in pairs:
        a, b = membership.get(pair.left), membership.get(pair.right)
        if a is None or b is None:
            continue
        if a == b:
            if pair.probability >= (staged.auto_link if pair.bar is None else pair.bar):
                held[a].append((pair.left, pair.right))
            continue
        a, b = settled(a), settled(b)
        if a != b:
            key = _golden_pair(a, b)
            review[key] = max(review.get(key, 0.0), pair.probability)
    added = {pair: p for pair, p in review.items() if pair not in state.open_pairs}
    closed: dict[tuple[str, str], tuple[int, float, str]] = {}
    for goldens, (pk, probability) in state.open_pairs.items():
        if settled(goldens[0]) == settled(goldens[1]):
            closed[goldens] = (pk, probability, "would merge")
        elif goldens not in review:
            closed[goldens] = (pk, probability, "below the review threshold")
    return _Plan(
        merges=merges,
        splits=_not_held(entity_type, held),
        added=added,
        closed=closed,
        records=frame.num_rows,
    )


def _not_held(
    entity_type: str, held: Mapping[str, list[tuple[int, int]]]
) -> dict[str, list[tuple[int, float | None]]]:
    """Golden records with auto-linked members the staged model's links at or above its
    auto-link threshold no longer connect to the rest (members a steward or the record's own
    arrival put there hold together as they are)."""
    auto: dict[str, dict[int, float | None]] = defaultdict(dict)
    for golden_id, pk, probability in SourceRecord.objects.filter(
        entity_type=entity_type, deleted=False, link_method=LinkMethod.AUTO
    ).values_list("golden_id", "pk", "link_probability"):
        auto[golden_id][pk] = probability
    anchors: dict[str, set[int]] = defaultdict(set)
    for golden_id, pk in (
        SourceRecord.objects.filter(ids_in(SourceRecord, "golden", list(auto)), deleted=False)
        .exclude(link_method=LinkMethod.AUTO)
        .values_list("golden_id", "pk")
    ):
        anchors[golden_id].add(pk)
    splits = {}
    for golden_id, members in auto.items():
        anchor = anchors.get(golden_id) or {min(members)}
        reached = _reached(anchor, held.get(golden_id, ()))
        loose = [(pk, p) for pk, p in members.items() if pk not in reached]
        if loose:
            splits[golden_id] = sorted(loose)
    return splits


def _reached(start: set[int], edges: Iterable[tuple[int, int]]) -> set[int]:
    """The records `edges` connect to any record of `start`."""
    neighbours = defaultdict(set)
    for left, right in edges:
        neighbours[left].add(right)
        neighbours[right].add(left)
    reached, frontier = set(start), list(start)
    while frontier:
        for other in neighbours[frontier.pop()]:
            if other not in reached:
                reached.add(other)
                frontier.append(other)
    return reached


def _described(plan: _Plan) -> dict:
    """The plan as counts and examples a steward reads (golden IDs with their names)."""
    by_survivor: dict[str, list] = defaultdict(list)
    for merge in plan.merges:
        by_survivor[merge.survivor].append(merge)
    merge_examples = sorted(by_survivor.items(), key=lambda item: -len(item[1]))[:EXAMPLES]
    split_examples = sorted(plan.splits.items(), key=lambda item: -len(item[1]))[:EXAMPLES]
    added = sorted(plan.added.items(), key=lambda item: -item[1])[:EXAMPLES]
    closed = sorted(plan.closed.items(), key=lambda item: -item[1][1])[:EXAMPLES]
    names = _names(
        {g for survivor, merges in merge_examples for g in (survivor, *(m.loser for m in merges))}
        | {g for g, _ in split_examples}
        | {g for pair, _ in added for g in pair}
        | {g for pair, _ in closed for g in pair}
    )
    keys = _record_keys({pk for _, loose in split_examples for pk, _ in loose})

    def golden(golden_id: str) -> dict:
        return {"id": golden_id, "name": names.get(golden_id, "")}

    return {
        "records": plan.records,
        "merges": {
            "count": len(by_survivor),
            "goldens_absorbed": len(plan.merges),
            "examples": [
                {
                    "survivor": golden(survivor),
                    "absorbed": [
                        {**golden(m.loser), "probability": round(m.probability, 4)} for m in merges
                    ],
                }
                for survivor, merges in merge_examples
            ],
        },
        "splits": {
            "count": len(plan.splits),
            "records": sum(len(loose) for loose in plan.splits.values()),
            "examples": [
                {
                    "golden": golden(golden_id),
                    "records": [
                        {
                            "key": keys.get(pk, str(pk)),
                            "probability": None if p is None else round(p, 4),
                        }
                        for pk, p in loose[:EXAMPLES]
                    ],
                }
                for golden_id, loose in split_examples
            ],
        },
        "candidates_added": {
            "count": len(plan.added),
            "examples": [
                {"left": golden(a), "right": golden(b), "probability": round(p, 4)}
                for (a, b), p in added
            ],
        },
        "candidates_closed": {
            "count": len(plan.closed),
            "examples": [
                {
                    "candidate": pk,
                    "left": golden(a),
                    "right": golden(b),
                    "probability": round(p, 4),
                    "why": why,
                }
                for (a, b), (pk, p, why) in closed
            ],
        },
    }


def _names(golden_ids: set[str]) -> dict[str, str]:
    if not golden_ids:
        return {}
    return dict(
        GoldenRecord.objects.filter(pk__in=list(golden_ids)).values_list("id", "display_name")
    )


def _record_keys(record_ids: set[int]) -> dict[int, str]:
    if not record_ids:
        return {}
    rows = SourceRecord.objects.filter(pk__in=list(record_ids)).values_list(
        "pk", "source_system__code", "source_key"
    )
    return {pk: f"{system}:{key}" for pk, system, key in rows}
