"""Clustering with constraints: a pure function over plain data (no Splink, no database).

Input: scored pairs of source records, the records' current golden records (with creation
times), the auto-link threshold and the "cannot link" record pairs (steward "not a match"
decisions). Output: the target clusters, the golden ID each keeps and the merges that get there.

Rules:
- Records that already share a golden record stay together (a steward merge is never split).
- Pairs at or above the threshold join clusters, strongest first; a join that would put two
  cannot-link records (or their golden records) in one cluster is refused, so constraints hold
  transitively. Refused pairs are reported so the caller can send them to review.
- A cluster keeps the ID of its oldest golden record (created_at, then ID); every other golden
  record in it merges into that one. Applying the merges and clustering again yields no merges.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScoredPair:
    left: int
    right: int
    probability: float


@dataclass(frozen=True)
class Merge:
    survivor: str
    loser: str
    probability: float


@dataclass(frozen=True)
class Cluster:
    golden_id: str
    golden_ids: frozenset[str]
    record_ids: frozenset[int]


@dataclass
class Clustering:
    clusters: list[Cluster] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    refused: list[ScoredPair] = field(default_factory=list)

    def cluster_of(self, record_id: int) -> Cluster | None:
        for cluster in self.clusters:
            if record_id in cluster.record_ids:
                return cluster
        return None


class _Components:
    """Union-find over golden IDs with a set of forbidden partners per component root."""

    def __init__(self, nodes: Iterable[Hashable]):
        self.parent: dict[Hashable, Hashable] = {n: n for n in nodes}
        self.forbidden: dict[Hashable, set[Hashable]] = {n: set() for n in self.parent}

    def find(self, node: Hashable) -> Hashable:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def forbid(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.forbidden[ra].add(rb)
            self.forbidden[rb].add(ra)

    def union(self, a: Hashable, b: Hashable) -> bool:
        """Join the components of `a` and `b`; False (nothing changes) when forbidden."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if rb in self.forbidden[ra]:
            return False
        self.parent[rb] = ra
        for other in self.forbidden.pop(rb):
            self.forbidden[other].discard(rb)
            self.forbidden[other].add(ra)
            self.forbidden[ra].add(other)
        return True


def _sort_key(created_at: Mapping[str, Any], golden_id: str) -> tuple:
    return (created_at[golden_id], golden_id)


def cluster(
    *,
    pairs: Iterable[ScoredPair],
    membership: Mapping[int, str],
    created_at: Mapping[str, Any],
    threshold: float,
    cannot_link: Iterable[tuple[int, int]] = (),
) -> Clustering:
    """The target clustering of the records in `membership` (record id → golden ID).

    `created_at` maps every golden ID in `membership` to something orderable (its creation
    time). Pairs naming records outside `membership` are ignored.
    """
    components = _Components(sorted(set(membership.values())))
    for left, right in cannot_link:
        if left in membership and right in membership:
            components.forbid(membership[left], membership[right])

    strongest: dict[str, float] = {}
    refused: list[ScoredPair] = []
    accepted = sorted(
        (
            p
            for p in pairs
            if p.probability >= threshold and p.left in membership and p.right in membership
        ),
        key=lambda p: (-p.probability, min(p.left, p.right), max(p.left, p.right)),
    )
    for pair in accepted:
        left, right = membership[pair.left], membership[pair.right]
        if left == right:
            continue
        if components.union(left, right):
            for golden_id in (left, right):
                strongest[golden_id] = max(strongest.get(golden_id, 0.0), pair.probability)
        else:
            refused.append(pair)

    by_root: dict[Hashable, set[str]] = {}
    for golden_id in components.parent:
        by_root.setdefault(components.find(golden_id), set()).add(golden_id)
    records_by_golden: dict[str, set[int]] = {}
    for record_id, golden_id in membership.items():
        records_by_golden.setdefault(golden_id, set()).add(record_id)

    result = Clustering(refused=refused)
    for golden_ids in sorted(
        by_root.values(), key=lambda g: min(_sort_key(created_at, i) for i in g)
    ):
        ordered = sorted(golden_ids, key=lambda i: _sort_key(created_at, i))
        survivor = ordered[0]
        records = frozenset().union(*(records_by_golden[i] for i in ordered))
        result.clusters.append(Cluster(survivor, frozenset(ordered), records))
        result.merges.extend(Merge(survivor, loser, strongest[loser]) for loser in ordered[1:])
    return result
