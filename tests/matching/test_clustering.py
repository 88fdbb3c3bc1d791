"""The pure clustering function: thresholds, constraints, stable golden IDs, idempotence."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.clustering import Merge, ScoredPair, cluster, dates_alike

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


# Twins: records 1 and 2 carry unalike dates of birth; 3 is a copy with none that fits either.
TWIN_DATES = {1: "1984-02-11", 2: "1986-09-23"}


def test_a_copy_without_a_date_of_birth_never_joins_twins():
    result = cluster(
        pairs=[ScoredPair(3, 1, 0.999), ScoredPair(3, 2, 0.998)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        dates=TWIN_DATES,
    )

    assert result.cluster_of(3) == result.cluster_of(1)
    assert result.cluster_of(2) != result.cluster_of(1)
    assert [(p.left, p.right, p.reason) for p in result.refused] == [
        (3, 2, "another date of birth in the other group")
    ]


def test_twins_stay_apart_when_their_copies_join_first():
    result = cluster(
        pairs=[ScoredPair(1, 4, 0.999), ScoredPair(2, 5, 0.999), ScoredPair(4, 5, 0.998)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        dates=TWIN_DATES,
    )

    assert result.cluster_of(1).record_ids == {1, 4}
    assert result.cluster_of(2).record_ids == {2, 5}


def test_a_pair_that_compared_two_dates_links_over_a_typo_or_not():
    result = cluster(
        pairs=[ScoredPair(1, 2, 0.999), ScoredPair(3, 4, 0.999)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        dates={**TWIN_DATES, 3: "1971-05-06", 4: "1971-06-05"},
    )

    assert result.cluster_of(1) == result.cluster_of(2)
    assert result.cluster_of(3) == result.cluster_of(4)
    assert result.refused == []


def test_a_copy_without_a_date_joins_groups_whose_dates_differ_by_a_typo():
    result = cluster(
        pairs=[ScoredPair(3, 1, 0.999), ScoredPair(3, 2, 0.998), ScoredPair(4, 5, 0.97)],
        membership=MEMBERSHIP,
        created_at=CREATED,
        threshold=0.95,
        dates={1: "1984-02-11", 2: "1984-02-17", 5: "1984-02-11"},
    )

    assert result.cluster_of(1).record_ids == {1, 2, 3}
    assert result.cluster_of(4).record_ids == {4, 5}


def test_dates_of_birth_are_alike_when_one_typo_apart():
    assert dates_alike("1984-02-11", "1984-02-17")  # one digit
    assert dates_alike("1984-02-11", "1948-02-11")  # two neighbours swapped
    assert dates_alike("1984-02-11", "1984-11-02")  # day and month swapped
    assert not dates_alike("1984-02-11", "1986-09-23")
    assert not dates_alike("1984-02-11", "1984-03-12")  # two digits


# Dates no typo joins: any two differ in more than one digit, not by a swap.
FAR_DATES = ("1950-01-01", "1972-06-15", "1993-12-28")
N = 10


def _dates_held(membership, dates):
    held: dict = {}
    for record, date in dates.items():
        held.setdefault(membership[record], set()).add(date)
    return held


@st.composite
def twin_scenarios(draw):
    goldens = draw(st.lists(st.integers(0, N - 1), min_size=N, max_size=N))
    membership = {r: f"G{goldens[r]:02d}" for r in range(N)}
    drawn = [draw(st.one_of(st.none(), st.sampled_from(FAR_DATES))) for _ in range(N)]
    dates = {r: d for r, d in enumerate(drawn) if d is not None}
    pairs = draw(
        st.lists(
            st.tuples(
                st.integers(0, N - 1),
                st.integers(0, N - 1),
                st.sampled_from([0.5, 0.91, 0.95, 0.97, 0.99]),
            ).filter(lambda t: t[0] != t[1] and not (t[0] in dates and t[1] in dates)),
            max_size=25,
        )
    )
    return membership, dates, pairs, draw(st.integers(0, 2**16))


@settings(max_examples=300, deadline=None)
@given(twin_scenarios())
def test_links_that_compared_no_dates_never_put_two_dates_of_birth_in_one_cluster(scenario):
    membership, dates, pairs, seed = scenario
    created = {g: g for g in set(membership.values())}
    scored = [ScoredPair(a, b, p) for a, b, p in pairs]

    def run(order):
        return cluster(
            pairs=order, membership=membership, created_at=created, threshold=0.9, dates=dates
        )

    result = run(scored)
    final = _apply(membership, result)
    # a golden record holding two dates holds one that already held two before clustering
    before, after = _dates_held(membership, dates), _dates_held(final, dates)
    for golden, held_dates in after.items():
        if len(held_dates) > 1:
            members = {membership[r] for r in membership if final[r] == golden}
            assert any(len(before.get(g, ())) > 1 for g in members)
    # a pair above the threshold that ends apart was refused (reported for review)
    refused = {(p.left, p.right) for p in result.refused}
    for pair in scored:
        if pair.probability >= 0.9 and final[pair.left] != final[pair.right]:
            assert (pair.left, pair.right) in refused

    shuffled = list(scored)
    random.Random(seed).shuffle(shuffled)
    assert _apply(membership, run(shuffled)) == final
