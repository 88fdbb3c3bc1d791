"""Survivorship: which value each field of a golden record takes, and why.

A pure function over plain data — member source records, rules and steward pins in; values
and lineage out — so it is unit-tested without a database and the database services only
load, call and store.

Every decision is deterministic. A steward pin beats every rule; an empty value never beats a
filled one; then the field's strategy decides; ties break by the source system's rank (the
rule's own ordering, else the systems' trust ranking), then by the most recent observation,
then by the oldest source record (lowest id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mdm.entities import LONGEST, MOST_FREQUENT, MOST_RECENT, SOURCE_PRIORITY, STRATEGIES

PIN = "pin"
RUNNER_UP_LIMIT = 5


@dataclass(frozen=True)
class Candidate:
    """One member source record, reduced to what survivorship needs."""

    record_id: int
    system: str
    source_key: str
    observed_at: datetime
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    strategy: str
    system_order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown survivorship strategy: {self.strategy!r}")


@dataclass(frozen=True)
class Pin:
    value: Any
    reason: str = ""
    pinned_by: str = ""


@dataclass(frozen=True)
class Survived:
    values: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, dict[str, Any]] = field(default_factory=dict)


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def survive(
    *,
    fields: Sequence[str],
    candidates: Sequence[Candidate],
    rules: Mapping[str, Rule],
    pins: Mapping[str, Pin] | None = None,
    system_rank: Mapping[str, int] | None = None,
) -> Survived:
    """Decide every field in `fields` from `candidates`.

    `rules` must hold a rule for every field (callers fill defaults from the entity
    declaration). `system_rank` is the global trust ranking (lower is more trusted); a system
    missing from it ranks last. Returns only filled fields: a field no candidate fills and no
    pin sets is absent from `values` and `lineage`.
    """
    if len(candidates) == 1 and not pins:
        return _sole(fields, candidates[0], rules)
    pins = pins or {}
    system_rank = system_rank or {}
    values: dict[str, Any] = {}
    lineage: dict[str, dict[str, Any]] = {}
    for name in fields:
        filled = [c for c in candidates if not is_empty(c.values.get(name))]
        if name in pins:
            pin = pins[name]
            values[name] = pin.value
            lineage[name] = {
                "value": pin.value,
                "rule": PIN,
                "record_id": None,
                "system": None,
                "source_key": None,
                "pinned_by": pin.pinned_by,
                "reason": pin.reason,
                "runner_ups": _runner_ups(name, filled, exclude=pin.value),
            }
            continue
        if not filled:
            continue
        rule = rules[name]
        winner = filled[0] if len(filled) == 1 else _pick(name, filled, rule, system_rank)
        value = winner.values[name]
        values[name] = value
        lineage[name] = {
            "value": value,
            "rule": rule.strategy,
            "record_id": winner.record_id,
            "system": winner.system,
            "source_key": winner.source_key,
            "runner_ups": _runner_ups(name, filled, exclude=value),
        }
    return Survived(values=values, lineage=lineage)


def _sole(fields: Sequence[str], only: Candidate, rules: Mapping[str, Rule]) -> Survived:
    """One member and no pins (every new golden record): each filled value wins unopposed.
    The same result as the general path, without its sorting and counting."""
    values: dict[str, Any] = {}
    lineage: dict[str, dict[str, Any]] = {}
    offered = only.values
    for name in fields:
        value = offered.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):  # is_empty, inlined
            continue
        values[name] = value
        lineage[name] = {
            "value": value,
            "rule": rules[name].strategy,
            "record_id": only.record_id,
            "system": only.system,
            "source_key": only.source_key,
            "runner_ups": [],
        }
    return Survived(values=values, lineage=lineage)


def _pick(
    name: str, filled: list[Candidate], rule: Rule, system_rank: Mapping[str, int]
) -> Candidate:
    order = {code: i for i, code in enumerate(rule.system_order)}

    def source_rank(c: Candidate) -> tuple[int, int]:
        # The rule's own ordering first; systems it does not list follow in trust order.
        return (order.get(c.system, len(order)), system_rank.get(c.system, 1 << 30))

    def tie_break(c: Candidate) -> tuple:
        return (*source_rank(c), -c.observed_at.timestamp(), c.record_id)

    if rule.strategy == SOURCE_PRIORITY:
        return min(filled, key=tie_break)
    if rule.strategy == MOST_RECENT:
        return min(filled, key=lambda c: (-c.observed_at.timestamp(), *source_rank(c), c.record_id))
    if rule.strategy == MOST_FREQUENT:
        counts = Counter(_hashable(c.values[name]) for c in filled)
        return min(filled, key=lambda c: (-counts[_hashable(c.values[name])], *tie_break(c)))
    if rule.strategy == LONGEST:
        return min(filled, key=lambda c: (-len(str(c.values[name]).strip()), *tie_break(c)))
    raise ValueError(f"unknown survivorship strategy: {rule.strategy!r}")


def _runner_ups(name: str, filled: list[Candidate], *, exclude: Any) -> list[dict[str, Any]]:
    """The distinct values the winner beat, each with the first record that offered it."""
    seen = {_hashable(exclude)}
    beaten = []
    for c in sorted(filled, key=lambda c: c.record_id):
        key = _hashable(c.values[name])
        if key in seen:
            continue
        seen.add(key)
        beaten.append(
            {
                "value": c.values[name],
                "record_id": c.record_id,
                "system": c.system,
                "source_key": c.source_key,
            }
        )
        if len(beaten) == RUNNER_UP_LIMIT:
            break
    return beaten


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return repr(value)
    return value
