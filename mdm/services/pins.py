"""Steward pins: a field value that beats every survivorship rule until unpinned."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, GoldenStatus, StewardOverride
from mdm.normalize import normalize_record
from mdm.services.audit import Actor, actor_user, delete_with_history, save_with_history
from mdm.services.golden import lock_goldens, recompute_goldens


def pin_value(
    *, golden: GoldenRecord, attribute: str, value: Any, actor: Actor, reason: str
) -> StewardOverride:
    """Pin `attribute` of `golden` to `value` (normalized like a source value would be)."""
    if not reason or not reason.strip():
        raise InvalidResolution("a pin needs a reason")
    entity = golden.entity
    if attribute not in entity.attribute_names:
        raise InvalidResolution(f"{entity.name} has no attribute {attribute!r}")
    with transaction.atomic():
        (locked,) = lock_goldens([golden.pk])
        if locked.status != GoldenStatus.ACTIVE:
            raise InvalidResolution(
                f"{locked.pk} is {locked.status}; only active records take pins"
            )
        normalized = normalize_record(entity, {**locked.values, attribute: value})
        if attribute in normalized.invalid:
            raise InvalidResolution(f"{attribute}: {normalized.invalid[attribute]['reason']}")
        if attribute not in normalized.values:
            raise InvalidResolution(f"{attribute}: a pin needs a value (unpin to clear it)")
        pin = StewardOverride.objects.filter(golden=locked, attribute=attribute).first()
        pin = pin or StewardOverride(golden=locked, attribute=attribute)
        pin.value = normalized.values[attribute]
        pin.reason = reason.strip()
        pin.pinned_by = actor_user(actor)
        save_with_history(pin, actor=actor, reason=reason)
        recompute_goldens(golden_ids=[locked.pk], actor=actor, reason=f"pin {attribute}: {reason}")
    return pin


def unpin_value(*, golden: GoldenRecord, attribute: str, actor: Actor, reason: str) -> None:
    with transaction.atomic():
        lock_goldens([golden.pk])
        pin = StewardOverride.objects.filter(golden=golden, attribute=attribute).first()
        if pin is None:
            raise InvalidResolution(f"{golden.pk}.{attribute} is not pinned")
        delete_with_history(pin, actor=actor, reason=reason)
        recompute_goldens(
            golden_ids=[golden.pk], actor=actor, reason=f"unpin {attribute}: {reason}"
        )
