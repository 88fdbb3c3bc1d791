"""Survivorship rules: preview a change, then save it and recompute what it alters.

A rule change is previewed by running survivorship for the one field under the current and
the proposed rule over every active golden record of the entity (in chunks, pure function
over loaded members), so a steward sees how many golden records the change alters before
saving. Saving writes the rule with history (who, when, why) and recomputes exactly the golden
records the preview found.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from mdm.entities import STRATEGIES, get_entity
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, GoldenStatus, StewardOverride, SurvivorshipRule
from mdm.services.audit import Actor, save_with_history
from mdm.services.golden import SurvivorshipInputs, candidate_for, load_members, recompute_goldens
from mdm.survivorship import Rule, survive

PREVIEW_CHUNK = 2000
EXAMPLE_LIMIT = 10


@dataclass(frozen=True)
class RuleChange:
    """One golden record whose field would change: before and after."""

    golden_id: str
    display_name: str
    before: Any
    after: Any


@dataclass
class RulePreview:
    entity_type: str
    attribute: str
    current: Rule
    proposed: Rule
    affected: int = 0
    examined: int = 0
    examples: list[RuleChange] = field(default_factory=list)
    affected_ids: list[str] = field(default_factory=list)

    @property
    def unchanged_rule(self) -> bool:
        return self.current == self.proposed


def current_rule(entity_type: str, attribute: str) -> Rule:
    """The rule in force for a field: the stored one, else the declaration's default."""
    return SurvivorshipInputs.load({entity_type}).rules[entity_type][attribute]


def _validated(
    entity_type: str, attribute: str, strategy: str, system_order: Sequence[str]
) -> Rule:
    entity = get_entity(entity_type)
    if attribute not in entity.survived_fields:
        raise InvalidResolution(f"{entity_type} has no field {attribute!r}")
    if strategy not in STRATEGIES:
        raise InvalidResolution(f"unknown survivorship strategy {strategy!r}")
    order = tuple(code.strip() for code in system_order if code and code.strip())
    if len(set(order)) != len(order):
        raise InvalidResolution("a source system may appear only once in the order")
    return Rule(strategy, order)


def _active_chunks(entity_type: str) -> Iterator[list[GoldenRecord]]:
    goldens = GoldenRecord.objects.filter(entity_type=entity_type, status=GoldenStatus.ACTIVE).only(
        "id", "entity_type", "display_name"
    )
    chunk: list[GoldenRecord] = []
    for golden in goldens.order_by("id").iterator(chunk_size=PREVIEW_CHUNK):
        chunk.append(golden)
        if len(chunk) == PREVIEW_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def preview_rule_change(
    *, entity_type: str, attribute: str, strategy: str, system_order: Sequence[str] = ()
) -> RulePreview:
    """How many active golden records of `entity_type` would change `attribute` under the
    proposed rule. Pinned fields are unaffected (a pin beats every rule). Writes nothing."""
    proposed = _validated(entity_type, attribute, strategy, system_order)
    inputs = SurvivorshipInputs.load({entity_type})
    current = inputs.rules[entity_type][attribute]
    # A grouped attribute survives with its group (its record is chosen by the group's
    # first filled attribute): the group's fields are survived together.
    groups = [
        g
        for g in get_entity(entity_type).survivorship_groups
        if attribute in g.attributes or attribute in g.follows
    ]
    fields = (
        list(dict.fromkeys((*groups[0].attributes, *groups[0].follows, attribute)))
        if groups
        else [attribute]
    )
    preview = RulePreview(entity_type, attribute, current=current, proposed=proposed)
    if preview.unchanged_rule:
        return preview
    for chunk in _active_chunks(entity_type):
        ids = [g.id for g in chunk]
        members = load_members(ids)
        pinned = set(
            StewardOverride.objects.filter(golden_id__in=ids, attribute=attribute).values_list(
                "golden_id", flat=True
            )
        )
        for golden in chunk:
            preview.examined += 1
            if golden.id in pinned:
                continue
            candidates = [candidate_for(m) for m in members.get(golden.id, ()) if not m.deleted]
            if not candidates:
                continue
            before, after = (
                survive(
                    fields=fields,
                    candidates=candidates,
                    rules={**inputs.rules[entity_type], attribute: rule},
                    system_rank=inputs.system_rank,
                    groups=groups,
                ).values.get(attribute)
                for rule in (current, proposed)
            )
            if before == after:
                continue
            preview.affected += 1
            preview.affected_ids.append(golden.id)
            if len(preview.examples) < EXAMPLE_LIMIT:
                preview.examples.append(RuleChange(golden.id, golden.display_name, before, after))
    return preview


def update_rule(
    *,
    entity_type: str,
    attribute: str,
    strategy: str,
    system_order: Sequence[str] = (),
    actor: Actor,
    reason: str,
) -> tuple[SurvivorshipRule, RulePreview]:
    """Save the rule for one field (with history) and recompute the golden records it alters.

    Returns the stored rule and the preview of what changed."""
    if not reason or not reason.strip():
        raise InvalidResolution("a rule change needs a reason")
    with transaction.atomic():
        preview = preview_rule_change(
            entity_type=entity_type,
            attribute=attribute,
            strategy=strategy,
            system_order=system_order,
        )
        rule = SurvivorshipRule.objects.select_for_update().filter(
            entity_type=entity_type, attribute=attribute
        ).first() or SurvivorshipRule(entity_type=entity_type, attribute=attribute)
        rule.strategy = preview.proposed.strategy
        rule.system_order = list(preview.proposed.system_order)
        save_with_history(rule, actor=actor, reason=reason.strip())
        why = f"rule {entity_type}.{attribute} → {rule.strategy}: {reason.strip()}"
        for start in range(0, len(preview.affected_ids), PREVIEW_CHUNK):
            recompute_goldens(
                golden_ids=preview.affected_ids[start : start + PREVIEW_CHUNK],
                actor=actor,
                reason=why,
            )
    return rule, preview
