"""Survivorship: which value each field of a golden record takes, and why.

A pure function over plain data — member source records, rules and steward pins in; values
and lineage out — so it is unit-tested without a database and the database services only
load, call and store.

Every decision is deterministic. A steward pin beats every rule; an empty value never beats a
filled one; then the field's strategy decides; ties break by the source system's rank (the
rule's own ordering, else the systems' trust ranking), then by the most recent observation,
then by the oldest source record (lowest id).

Groups (`mdm.entities.SurvivorshipGroup`: the address block) survive together from ONE source
record: the first attribute of the group that some record fills decides which record, by its
own rule, and every unpinned attribute of the group takes that record's value — an empty one
stays empty rather than coming from another record, so a golden record never shows a street
from one record and a country from another. Lineage names the group and its record.

Spelling: among the values that are the same but for case, accents and punctuation ("ACME
CORPORATION", "Acme Corporation"), the best-written one is shown — mixed case over ALL CAPS or
all lower case, accents kept over dropped — whichever record the rule picked; lineage then
names the record that wrote it so.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mdm.entities import (
    LONGEST,
    MOST_FREQUENT,
    MOST_RECENT,
    SOURCE_PRIORITY,
    STRATEGIES,
    SurvivorshipGroup,
)

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
    groups: Sequence[SurvivorshipGroup] = (),
) -> Survived:
    """Decide every field in `fields` from `candidates`.

    `rules` must hold a rule for every field (callers fill defaults from the entity
    declaration). `system_rank` is the global trust ranking (lower is more trusted); a system
    missing from it ranks last. `groups` survive together (the module docstring). Returns only
    filled fields: a field no candidate fills and no pin sets is absent from `values` and
    `lineage`.
    """
    group_of = _group_of(groups, fields)
    follow_of = {name: g for g in groups for name in g.follows if name in set(fields)}
    if len(candidates) == 1 and not pins:
        return _sole(fields, candidates[0], rules, group_of, follow_of)
    pins = pins or {}
    system_rank = system_rank or {}
    values: dict[str, Any] = {}
    lineage: dict[str, dict[str, Any]] = {}
    decided = {
        group.name: _group_record(group, fields, candidates, rules, pins, system_rank)
        for group in {id(g): g for g in (*group_of.values(), *follow_of.values())}.values()
    }
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
        group = group_of.get(name)
        follows = False
        if group is None and name in follow_of:
            chosen, lead = decided[follow_of[name].name]
            if chosen is not None and not is_empty(chosen.values.get(name)):
                group, follows = follow_of[name], True
        if group is not None:
            chosen, lead = decided[group.name]
            if chosen is None or is_empty(chosen.values.get(name)):
                continue  # the group's record has none: nothing from another record
            winner, rule = chosen, rules[lead]
        else:
            rule = rules[name]
            winner = filled[0] if len(filled) == 1 else _pick(name, filled, rule, system_rank)
        writer = _best_written(name, winner, filled) if len(filled) > 1 else winner
        value = writer.values[name]
        values[name] = value
        entry = {
            "value": value,
            "rule": rule.strategy,
            "record_id": writer.record_id,
            "system": writer.system,
            "source_key": writer.source_key,
            "runner_ups": _runner_ups(name, filled, exclude=value),
        }
        if group is not None:
            entry["group"] = {"name": group.name, "by": lead, "record_id": winner.record_id}
            if follows:
                entry["group"]["follows"] = True
        if writer is not winner:
            entry["spelling_of"] = winner.record_id  # the rule's pick, written better elsewhere
        lineage[name] = entry
    return Survived(values=values, lineage=lineage)


def _group_of(
    groups: Sequence[SurvivorshipGroup], fields: Sequence[str]
) -> dict[str, SurvivorshipGroup]:
    """Field → its group, for the groups with a field among `fields`."""
    wanted = set(fields)
    return {name: g for g in groups for name in g.attributes if name in wanted}


def _group_record(
    group: SurvivorshipGroup,
    fields: Sequence[str],
    candidates: Sequence[Candidate],
    rules: Mapping[str, Rule],
    pins: Mapping[str, Pin],
    system_rank: Mapping[str, int],
) -> tuple[Candidate | None, str]:
    """The one record the group's unpinned fields come from, and the field whose rule chose
    it: the group's first unpinned field that some record fills."""
    wanted = set(fields)
    for lead in group.attributes:
        if lead not in wanted or lead in pins:
            continue
        filled = [c for c in candidates if not is_empty(c.values.get(lead))]
        if filled:
            chosen = (
                filled[0] if len(filled) == 1 else _pick(lead, filled, rules[lead], system_rank)
            )
            return chosen, lead
    return None, group.lead


_MARKS = re.compile(r"[\W_]+")


def _fold(text: str) -> str:
    """Case, accents, punctuation and spacing dropped: what two spellings share."""
    decomposed = unicodedata.normalize("NFKD", text)
    return _MARKS.sub("", "".join(c for c in decomposed if not unicodedata.combining(c))).casefold()


def _written(text: str) -> tuple[int, int]:
    """How well a spelling is written (lower is better): mixed case first, accents kept."""
    upper = lower = False
    for char in text:
        if char.isupper():
            upper = True
        elif char.islower():
            lower = True
    return (0 if upper and lower else 1, 0 if not text.isascii() else 1)


def _best_written(name: str, winner: Candidate, filled: list[Candidate]) -> Candidate:
    """The record writing the winner's value best among those with the same value but for
    case, accents and punctuation; the winner on a tie."""
    value = winner.values[name]
    if not isinstance(value, str):
        return winner
    best, score = winner, _written(value)
    if score == (0, 0):
        return winner
    key: str | None = None
    for other in filled:
        text = other.values[name]
        if other is winner or not isinstance(text, str) or text == value:
            continue
        if text.casefold() != value.casefold():
            key = key if key is not None else _fold(value)
            if _fold(text) != key:
                continue
        written = _written(text)
        if written < score:
            best, score = other, written
    return best


def _sole(
    fields: Sequence[str],
    only: Candidate,
    rules: Mapping[str, Rule],
    group_of: Mapping[str, SurvivorshipGroup],
    follow_of: Mapping[str, SurvivorshipGroup],
) -> Survived:
    """One member and no pins (every new golden record): each filled value wins unopposed.
    The same result as the general path, without its sorting and counting."""
    values: dict[str, Any] = {}
    lineage: dict[str, dict[str, Any]] = {}
    offered = only.values
    lead: dict[str, str | None] = {}
    for group in (*group_of.values(), *follow_of.values()):
        if group.name not in lead:
            lead[group.name] = next(
                (f for f in group.attributes if f in group_of and not is_empty(offered.get(f))),
                None,
            )
    for name in fields:
        value = offered.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):  # is_empty, inlined
            continue
        values[name] = value
        member = group_of.get(name) or follow_of.get(name)
        by = lead[member.name] if member else None
        entry = {
            "value": value,
            "rule": rules[by or name].strategy,
            "record_id": only.record_id,
            "system": only.system,
            "source_key": only.source_key,
            "runner_ups": [],
        }
        if member is not None and by is not None:
            entry["group"] = {"name": member.name, "by": by, "record_id": only.record_id}
            if name in follow_of:
                entry["group"]["follows"] = True
        lineage[name] = entry
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
