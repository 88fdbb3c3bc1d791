"""Hard-identifier cannot-links in the pure clustering: conflicting identifiers never share a
cluster, directly or through records without one; the cut is at the weakest link; the result
does not depend on the order of the input (property-based)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.clustering import ScoredPair, cluster
from mdm.identifiers import reason


def _apply(membership, clustering):
    target = {m.loser: m.survivor for m in clustering.merges}
    return {record: target.get(golden, golden) for record, golden in membership.items()}


def _held(membership, record_ids):
    """Golden → kind → values from per-record identifiers (what `held_identifiers` reads)."""
    held: dict = {}
    for record, kinds in record_ids.items():
        for kind, value in kinds.items():
            held.setdefault(membership[record], {}).setdefault(kind, set()).add(value)
    return held


MEMBERSHIP = {1: "G1", 2: "G2", 3: "G3", 4: "G4"}
CREATED = {"G1": 1, "G2": 2, "G3": 3, "G4": 4}


def test_conflicting_tax_ids_are_cut_at_the_weakest_link_through_a_record_without_one():
    # 1 (DE…) — 2 (no tax ID) — 3 (GB…): the weaker link 2–3 is refused with its reason.
    ids = {1: {"tax_id": "DE136695976"}, 3: {"tax_id": "GB980780684"}}
    result = cluster(
        pairs=[ScoredPair(1, 2, 0.99), ScoredPair(2, 3, 0.97)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.9,
        identifiers=_held(MEMBERSHIP, ids),
        conflict_reason=lambda kinds: reason("customer", kinds),
    )
    final = _apply(MEMBERSHIP, result)
    assert final[1] == final[2] != final[3]
    assert [(p.left, p.right, p.reason) for p in result.refused] == [(2, 3, "conflicting tax IDs")]


def test_the_stronger_link_wins_whichever_side_it_is_on():
    ids = {1: {"tax_id": "DE136695976"}, 3: {"tax_id": "GB980780684"}}
    result = cluster(
        pairs=[ScoredPair(1, 2, 0.95), ScoredPair(2, 3, 0.99)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.9,
        identifiers=lambda goldens: {g: v for g, v in _held(MEMBERSHIP, ids).items()},
    )
    final = _apply(MEMBERSHIP, result)
    assert final[2] == final[3] != final[1]
    assert result.refused[0].reason == "conflicting tax_id"


def test_equal_identifiers_and_other_kinds_do_not_block():
    ids = {
        1: {"tax_id": "DE136695976", "lei": "5493001KJTIIGC8Y1R12"},
        2: {"tax_id": "DE136695976"},
        3: {"duns": "150483782"},
    }
    result = cluster(
        pairs=[ScoredPair(1, 2, 0.99), ScoredPair(2, 3, 0.97)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.9,
        identifiers=_held(MEMBERSHIP, ids),
    )
    assert len(set(_apply(MEMBERSHIP, result)[r] for r in (1, 2, 3))) == 1
    assert result.refused == []


def test_a_golden_record_that_already_mixes_identifiers_absorbs_no_third_one():
    membership = {1: "G1", 2: "G1", 3: "G3", 4: "G4"}
    ids = {1: {"tax_id": "DE1"}, 2: {"tax_id": "DE2"}, 3: {"tax_id": "DE1"}}
    result = cluster(
        pairs=[ScoredPair(1, 3, 0.99), ScoredPair(2, 4, 0.98)],
        membership=membership,
        created_at=CREATED,
        threshold=0.9,
        identifiers=_held(membership, ids),
    )
    final = _apply(membership, result)
    assert final[1] == final[2] == final[4]  # the old record stays together, 4 has no tax ID
    assert final[3] != final[1]  # DE1 joining {DE1, DE2} would still put DE2 with DE1


# ------------------------------------------------------------------ property-based (hypothesis)

N = 12


@st.composite
def scenarios(draw):
    goldens = draw(st.lists(st.integers(0, N - 1), min_size=N, max_size=N))
    membership = {r: f"G{goldens[r]:02d}" for r in range(N)}
    kinds = ("tax_id", "lei")
    record_ids = {}
    for record in range(N):
        values = {}
        for kind in kinds:
            value = draw(st.one_of(st.none(), st.sampled_from(["A", "B", "C"])))
            if value is not None:
                values[kind] = value
        if values:
            record_ids[record] = values
    pairs = draw(
        st.lists(
            st.tuples(
                st.integers(0, N - 1),
                st.integers(0, N - 1),
                st.sampled_from([0.5, 0.91, 0.93, 0.95, 0.97, 0.99]),
            ).filter(lambda t: t[0] != t[1]),
            max_size=30,
        )
    )
    cannot = draw(
        st.lists(
            st.tuples(st.integers(0, N - 1), st.integers(0, N - 1)).filter(lambda t: t[0] != t[1]),
            max_size=4,
        )
    )
    seed = draw(st.integers(0, 2**16))
    return membership, record_ids, pairs, cannot, seed


def _mixes(final, record_ids):
    """(kind, golden) where one golden record holds two different values of one kind."""
    seen: dict = {}
    for record, kinds in record_ids.items():
        for kind, value in kinds.items():
            seen.setdefault((kind, final[record]), set()).add(value)
    return {key for key, values in seen.items() if len(values) > 1}


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_cannot_link_pair_shares_a_cluster_and_order_does_not_matter(scenario):
    membership, record_ids, pairs, cannot, seed = scenario
    # Constraints hold only for what the data did not already mix: goldens start as given.
    before = _mixes(membership, record_ids)
    before_apart = {(a, b) for a, b in cannot if membership[a] != membership[b]}
    created = {g: g for g in set(membership.values())}
    scored = [ScoredPair(a, b, p) for a, b, p in pairs]

    def run(order):
        return cluster(
            pairs=order,
            membership=membership,
            created_at=created,
            threshold=0.9,
            cannot_link=[(a, b) for a, b in cannot],
            identifiers=lambda goldens: _held(membership, record_ids),
        )

    result = run(scored)
    final = _apply(membership, result)
    after = _mixes(final, record_ids)
    # a golden record holding two values of one kind got them from ONE golden record that
    # already mixed them: nothing else carrying that kind joined it
    for kind, golden in after:
        carriers = {
            membership[r] for r, k in record_ids.items() if kind in k and final[r] == golden
        }
        assert len(carriers) == 1 and (kind, next(iter(carriers))) in before
    for a, b in before_apart:
        assert final[a] != final[b]
    # a pair above the threshold that ends apart was refused (reported for review)
    refused = {(min(p.left, p.right), max(p.left, p.right)) for p in result.refused}
    for pair in scored:
        if pair.probability >= 0.9 and final[pair.left] != final[pair.right]:
            assert (min(pair.left, pair.right), max(pair.left, pair.right)) in refused

    shuffled = list(scored)
    random.Random(seed).shuffle(shuffled)
    again = run(shuffled)
    assert sorted(again.merges) == sorted(result.merges)
    assert _apply(membership, again) == final
