"""The pure clustering function: thresholds, constraints, stable golden IDs, idempotence."""

from matching.clustering import Merge, ScoredPair, cluster

# Records 1..6 each start in their own golden record; G1 is the oldest.
MEMBERSHIP = {1: "G1", 2: "G2", 3: "G3", 4: "G4", 5: "G5", 6: "G6"}
CREATED = {"G1": 1, "G2": 2, "G3": 3, "G4": 4, "G5": 5, "G6": 6}


def _apply(membership, clustering):
    """What the resolution service does with the merges: losers' records move to survivors."""
    target = {m.loser: m.survivor for m in clustering.merges}
    return {record: target.get(golden, golden) for record, golden in membership.items()}


def test_pairs_at_or_above_threshold_merge_into_the_oldest_golden():
    result = cluster(
        pairs=[ScoredPair(3, 1, 0.99), ScoredPair(2, 3, 0.95)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
    )

    assert result.cluster_of(2).golden_id == "G1"
    assert sorted(result.merges, key=lambda m: m.loser) == [
        Merge("G1", "G2", 0.95),
        Merge("G1", "G3", 0.99),
    ]


def test_pairs_below_threshold_do_not_merge():
    result = cluster(
        pairs=[ScoredPair(1, 2, 0.94)], membership=MEMBERSHIP, created_at=CREATED, threshold=0.95
    )

    assert result.merges == []
    assert len(result.clusters) == 6


def test_oldest_is_decided_by_created_at_not_by_id_or_pair_order():
    created = {**CREATED, "G5": 0}

    result = cluster(
        pairs=[ScoredPair(1, 5, 0.99), ScoredPair(5, 2, 0.98)],
        membership=MEMBERSHIP,
        created_at=created,
        threshold=0.9,
    )

    assert result.cluster_of(1).golden_id == "G5"
    assert {m.loser for m in result.merges} == {"G1", "G2"}


def test_cannot_link_pair_is_never_merged():
    result = cluster(
        pairs=[ScoredPair(1, 2, 0.999)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        cannot_link={(1, 2)},
    )

    assert result.merges == []
    assert result.refused == [ScoredPair(1, 2, 0.999)]


def test_cannot_link_holds_transitively():
    # 1-3 and 2-3 are both strong, but 1 and 2 must never share a cluster.
    result = cluster(
        pairs=[ScoredPair(1, 3, 0.99), ScoredPair(2, 3, 0.98), ScoredPair(3, 4, 0.97)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        cannot_link={(2, 1)},
    )

    assert result.cluster_of(1) != result.cluster_of(2)
    assert result.cluster_of(3) == result.cluster_of(1)
    assert result.cluster_of(4) == result.cluster_of(1)
    assert result.refused == [ScoredPair(2, 3, 0.98)]


def test_cannot_link_holds_after_components_grew_on_both_sides():
    result = cluster(
        pairs=[
            ScoredPair(1, 3, 0.99),
            ScoredPair(2, 4, 0.99),
            ScoredPair(3, 4, 0.96),
            ScoredPair(4, 5, 0.95),
        ],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        cannot_link={(1, 2)},
    )

    assert result.cluster_of(1).record_ids == {1, 3}
    assert result.cluster_of(2).record_ids == {2, 4, 5}


def test_cannot_link_applies_to_the_golden_records_of_the_pair():
    # Records 1 and 7 share G1; "7 is not 2" keeps 2 away from 1 too.
    membership = {**MEMBERSHIP, 7: "G1"}

    result = cluster(
        pairs=[ScoredPair(1, 2, 0.99)],
        membership=membership,
        created_at=CREATED,
        threshold=0.95,
        cannot_link={(7, 2)},
    )

    assert result.merges == []


def test_stronger_pair_wins_when_constraint_forces_a_choice():
    result = cluster(
        pairs=[ScoredPair(2, 3, 0.96), ScoredPair(1, 3, 0.99)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        cannot_link={(1, 2)},
    )

    assert result.cluster_of(3).golden_id == "G1"
    assert result.cluster_of(2).record_ids == {2}


def test_records_already_in_one_golden_stay_together_without_pairs():
    membership = {1: "G1", 2: "G1", 3: "G3"}

    result = cluster(pairs=[], membership=membership, created_at=CREATED, threshold=0.95)

    assert result.cluster_of(2).record_ids == {1, 2}
    assert result.merges == []


def test_applying_the_merges_then_reclustering_merges_nothing():
    pairs = [ScoredPair(1, 2, 0.99), ScoredPair(2, 3, 0.97), ScoredPair(5, 6, 0.96)]
    first = cluster(pairs=pairs, membership=MEMBERSHIP, created_at=CREATED, threshold=0.95)

    second = cluster(
        pairs=pairs,
        membership=_apply(MEMBERSHIP, first),
        created_at=CREATED,
        threshold=0.95,
    )

    assert len(first.merges) == 3
    assert second.merges == []
    assert {c.golden_id for c in second.clusters} == {c.golden_id for c in first.clusters}


def test_pairs_naming_unknown_records_are_ignored():
    result = cluster(
        pairs=[ScoredPair(1, 99, 0.99)], membership=MEMBERSHIP, created_at=CREATED, threshold=0.9
    )

    assert result.merges == []


def test_result_does_not_depend_on_pair_order():
    pairs = [ScoredPair(1, 2, 0.97), ScoredPair(2, 3, 0.99), ScoredPair(3, 4, 0.96)]
    kwargs = dict(membership=MEMBERSHIP, created_at=CREATED, threshold=0.95, cannot_link={(1, 4)})

    forward = cluster(pairs=pairs, **kwargs)
    backward = cluster(pairs=list(reversed(pairs)), **kwargs)

    assert forward.clusters == backward.clusters
    assert forward.merges == backward.merges


def test_creation_times_are_asked_for_the_joined_golden_records_only():
    asked = []

    def created_at(golden_ids):
        asked.append(set(golden_ids))
        return {g: CREATED[g] for g in golden_ids}

    result = cluster(
        pairs=[ScoredPair(3, 1, 0.99), ScoredPair(5, 4, 0.97), ScoredPair(2, 6, 0.5)],
        membership=MEMBERSHIP,
        created_at=created_at,
        threshold=0.95,
    )

    assert asked == [{"G1", "G3", "G4", "G5"}]
    assert result.merges == [Merge("G1", "G3", 0.99), Merge("G4", "G5", 0.97)]
    assert len(result.clusters) == 4  # built on demand, singletons included
    assert result.cluster_of(6).golden_id == "G6"
