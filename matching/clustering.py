"""Clustering with constraints: a pure function over plain data (no Splink, no database).

Input: scored pairs of source records, the records' current golden records (with creation
times), the auto-link threshold and the "cannot link" record pairs (steward "not a match"
decisions). Output: the target clusters, the golden ID each keeps and the merges that get there.

Rules:
- Records that already share a golden record stay together (a steward merge is never split).
- Pairs at or above the threshold (a pair's own `bar` when it has one: `matching.specs.
  Thresholds.auto_link_bars`) join clusters, strongest first; a join that would put two
  cannot-link records (or their golden records) in one cluster is refused, so constraints hold
  transitively. Refused pairs are reported so the caller can send them to review.
- Hard identifiers (`mdm.identifiers`): every component carries the identifier values its
  records hold (kind → values); a join that would give a component two different values of
  one kind is refused ("conflicting tax IDs"), so two records with different tax IDs never
  share a cluster, not even through records that carry none. Strongest first, the cluster is
  cut at its weakest link.
- Dates of birth (`mdm.entities.EntityType.birth_date`): no hard identifier, since a typo in
  one is common and a pair that compared two different dates and still scored above its bar
  links. But every component carries the dates its records hold, and a join by a pair that
  did not compare two dates (one of its records has none) is refused when both components hold
  dates and no date of one is alike a date of the other (`dates_alike`): twins known by name
  and town never become one cluster through a copy that carries no date and fits either.
- A cluster keeps the ID of its oldest golden record (created_at, then ID); every other golden
  record in it merges into that one. Applying the merges and clustering again yields no merges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any

# golden ID → identifier kind → the values its records hold (one, unless it already mixes)
Held = Mapping[str, Mapping[str, AbstractSet[str]]]
# record id → its date of birth (ISO "YYYY-MM-DD"); records without one are left out
Dates = Mapping[int, str]

ANOTHER_DATE = "another date of birth in the other group"


def dates_alike(a: str, b: str) -> bool:
    """Whether two ISO dates may be one date with a typo: equal, one digit wrong, two
    neighbouring digits swapped, or day and month swapped ("1980-03-07" / "1980-07-03")."""
    if a == b:
        return True
    x, y = a.replace("-", ""), b.replace("-", "")
    if len(x) != 8 or len(y) != 8:
        return False
    differ = [i for i in range(8) if x[i] != y[i]]
    if len(differ) == 1:
        return True
    if len(differ) == 2 and differ[1] == differ[0] + 1:
        i = differ[0]
        if x[i] == y[i + 1] and x[i + 1] == y[i]:
            return True
    return x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]


@dataclass(frozen=True)
class ScoredPair:
    left: int
    right: int
    probability: float
    reason: str = ""  # why a constraint refused it, shown with the review candidate
    # the pair's own auto-link bar (`Thresholds.auto_link_bars`); None: `cluster`'s threshold
    bar: float | None = None


@dataclass(frozen=True, order=True)
class Merge:
    survivor: str
    loser: str
    probability: float


@dataclass(frozen=True)
class Cluster:
    golden_id: str
    golden_ids: frozenset[str]
    record_ids: frozenset[int]


class Clustering:
    """The merges that reach the target clustering and the pairs a constraint refused.

    `clusters` (every cluster, singletons included, oldest first) is built when first read:
    a batch run needs only the merges, and building a million one-record clusters cost more
    than finding the merges."""

    def __init__(
        self,
        merges: list[Merge] | None = None,
        refused: list[ScoredPair] | None = None,
        build_clusters: Callable[[], list[Cluster]] | None = None,
    ):
        self.merges: list[Merge] = merges or []
        self.refused: list[ScoredPair] = refused or []
        self._build_clusters = build_clusters
        self._clusters: list[Cluster] | None = None

    @property
    def clusters(self) -> list[Cluster]:
        if self._clusters is None:
            self._clusters = self._build_clusters() if self._build_clusters else []
        return self._clusters

    def cluster_of(self, record_id: int) -> Cluster | None:
        for cluster in self.clusters:
            if record_id in cluster.record_ids:
                return cluster
        return None


class _Components:
    """Union-find over golden IDs with, per component root, a set of forbidden partners and the
    hard-identifier values the component holds (kind → values). A node exists once named (the
    records nobody pairs with never cost anything)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.forbidden: dict[str, set[str]] = {}
        # root → kind → values; never mutated (a union builds a new mapping), so the caller's
        # mappings are held as given, without a copy per golden record
        self.held: dict[str, Mapping[str, AbstractSet[str]]] = {}
        self.dates: dict[str, frozenset[str]] = {}  # root → the dates of birth its records hold

    def dates_clash(self, ra: str, rb: str) -> bool:
        """Whether roots `ra` and `rb` both hold dates of birth and none of one is alike one
        of the other."""
        a, b = self.dates.get(ra), self.dates.get(rb)
        if not a or not b or a & b:
            return False
        return not any(dates_alike(x, y) for x in a for y in b)

    def clashes(self, ra: str, rb: str) -> list[str]:
        """The identifier kinds for which joining roots `ra` and `rb` would mix values."""
        a, b = self.held.get(ra), self.held.get(rb)
        if not a or not b:
            return []
        return sorted(k for k in a.keys() & b.keys() if len(a[k] | b[k]) > 1)

    def find(self, node: str) -> str:
        parent = self.parent
        if node not in parent:
            parent[node] = node
            return node
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def forbid(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.forbidden.setdefault(ra, set()).add(rb)
            self.forbidden.setdefault(rb, set()).add(ra)

    def union(self, a: str, b: str) -> str | None:
        """Join the components of `a` and `b`: None when done, else why not (nothing changes):
        "" for a steward's keep-apart, the clashing identifier kinds joined by "," else."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        if rb in self.forbidden.get(ra, ()):
            return ""
        clashes = self.clashes(ra, rb)
        if clashes:
            return ",".join(clashes)
        self.parent[rb] = ra
        for other in self.forbidden.pop(rb, ()):
            self.forbidden[other].discard(rb)
            self.forbidden[other].add(ra)
            self.forbidden.setdefault(ra, set()).add(other)
        dates = self.dates.pop(rb, None)
        if dates:
            self.dates[ra] = self.dates.get(ra, frozenset()) | dates
        absorbed = self.held.pop(rb, None)
        if absorbed:
            held = self.held.get(ra)
            self.held[ra] = absorbed if held is None else _joined(held, absorbed)
        return None

    def groups(self, nodes: Iterable[str]) -> dict[str, set[str]]:
        by_root: dict[str, set[str]] = {}
        for node in nodes:
            by_root.setdefault(self.find(node), set()).add(node)
        return by_root


def _joined(
    a: Mapping[str, AbstractSet[str]], b: Mapping[str, AbstractSet[str]]
) -> dict[str, AbstractSet[str]]:
    joined = dict(a)
    for kind, values in b.items():
        joined[kind] = joined[kind] | values if kind in joined else values
    return joined


CreatedAt = Mapping[str, Any] | Callable[[set[str]], Mapping[str, Any]]


def _sort_key(created_at: Mapping[str, Any], golden_id: str) -> tuple:
    return (created_at[golden_id], golden_id)


def cluster(
    *,
    pairs: Iterable[ScoredPair],
    membership: Mapping[int, str],
    created_at: CreatedAt,
    threshold: float,
    cannot_link: Iterable[tuple[int, int]] = (),
    identifiers: Held | Callable[[set[str]], Held] | None = None,
    conflict_reason: Callable[[list[str]], str] | None = None,
    dates: Dates | Callable[[set[str]], Dates] | None = None,
) -> Clustering:
    """The target clustering of the records in `membership` (record id → golden ID).

    `created_at` gives each golden ID something orderable (its creation time): a mapping, or
    a function that is called once with the golden IDs that end up sharing a cluster and
    returns theirs (only those are compared; reading them all would cost a scan of every
    golden record). Pairs naming records outside `membership` are ignored.

    `identifiers` gives the hard-identifier values each golden record's records hold
    (`Held`): a mapping, or a function called once with the golden IDs that auto-link pairs
    name. `conflict_reason` words the clashing kinds for a refused pair's `reason` (default:
    "conflicting " and the kinds).

    `dates` gives the date of birth of each record that has one (`Dates`): a mapping, or a
    function called once with the golden IDs that auto-link pairs name, returning the dates of
    those golden records' members. A join by a pair that did not compare two dates is refused
    ("another date of birth in the other group") when the two components' dates are unalike.
    """
    components = _Components()
    for left, right in cannot_link:
        if left in membership and right in membership:
            components.forbid(membership[left], membership[right])

    strongest: dict[str, float] = {}
    refused: list[ScoredPair] = []
    accepted = sorted(
        (
            p
            for p in pairs
            if p.probability >= (threshold if p.bar is None else p.bar)
            and p.left in membership
            and p.right in membership
        ),
        key=lambda p: (-p.probability, min(p.left, p.right), max(p.left, p.right)),
    )
    named = {membership[p.left] for p in accepted}
    named.update(membership[p.right] for p in accepted)
    if identifiers is not None and accepted:
        held = identifiers(named) if callable(identifiers) else identifiers
        for golden_id, kinds in held.items():
            if kinds and golden_id in named:
                components.held[components.find(golden_id)] = kinds  # no union yet: a root
    birth: Dates = {}
    if dates is not None and accepted:
        birth = dates(named) if callable(dates) else dates
        by_golden: dict[str, set[str]] = {}
        for record_id, date in birth.items():
            owner = membership.get(record_id)
            if owner in named:
                by_golden.setdefault(owner, set()).add(date)
        for golden_id, held_dates in by_golden.items():
            components.dates[components.find(golden_id)] = frozenset(held_dates)
    word = conflict_reason or (lambda kinds: "conflicting " + ", ".join(kinds))
    for pair in accepted:
        left_golden, right_golden = membership[pair.left], membership[pair.right]
        if left_golden == right_golden:
            continue
        if (
            birth
            and (pair.left not in birth or pair.right not in birth)
            and components.dates_clash(components.find(left_golden), components.find(right_golden))
        ):
            refused.append(replace(pair, reason=pair.reason or ANOTHER_DATE))
            continue
        refusal = components.union(left_golden, right_golden)
        if refusal is None:
            for golden_id in (left_golden, right_golden):
                strongest[golden_id] = max(strongest.get(golden_id, 0.0), pair.probability)
        elif refusal:
            refused.append(replace(pair, reason=pair.reason or word(refusal.split(","))))
        else:
            refused.append(pair)

    joined = [g for g in components.groups(strongest).values() if len(g) > 1]
    times = (
        created_at({golden_id for group in joined for golden_id in group})
        if callable(created_at)
        else created_at
    )
    merges: list[Merge] = []
    for golden_ids in sorted(joined, key=lambda g: min(_sort_key(times, i) for i in g)):
        survivor, *losers = sorted(golden_ids, key=lambda i: _sort_key(times, i))
        merges.extend(Merge(survivor, loser, strongest[loser]) for loser in losers)

    def build_clusters() -> list[Cluster]:
        goldens = set(membership.values())
        every = created_at(goldens) if callable(created_at) else created_at
        records_by_golden: dict[str, set[int]] = {}
        for record_id, golden_id in membership.items():
            records_by_golden.setdefault(golden_id, set()).add(record_id)
        clusters = []
        groups = components.groups(records_by_golden).values()
        for golden_ids in sorted(groups, key=lambda g: min(_sort_key(every, i) for i in g)):
            ordered = sorted(golden_ids, key=lambda i: _sort_key(every, i))
            records = frozenset().union(*(records_by_golden[i] for i in ordered))
            clusters.append(Cluster(ordered[0], frozenset(ordered), records))
        return clusters

    return Clustering(merges=merges, refused=refused, build_clusters=build_clusters)
