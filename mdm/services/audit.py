"""Writing with history: one place that stamps actor, reason and correlation ID on history
rows, for single saves and for bulk writes alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from mdm.context import audit_context, correlation_id, current_actor

# A steward (a Django user) or a named machine actor such as "system:ingest" or "integration:crm".
Actor = AbstractBaseUser | str | None

BATCH_SIZE = 1000


def actor_label(actor: Actor) -> str:
    if actor is None:
        return current_actor() or "system"
    if isinstance(actor, str):
        return actor
    return f"user:{actor.get_username()}"


def actor_user(actor: Actor) -> AbstractBaseUser | None:
    return None if actor is None or isinstance(actor, str) else actor


def _history_attrs(actor: Actor) -> dict[str, str]:
    return {"actor": actor_label(actor), "correlation_id": correlation_id()}


def save_with_history(obj: models.Model, *, actor: Actor, reason: str, **save_kwargs: Any) -> None:
    obj._change_reason = reason
    obj._history_user = actor_user(actor)
    with audit_context(actor=actor_label(actor)):
        obj.save(**save_kwargs)


def delete_with_history(obj: models.Model, *, actor: Actor, reason: str) -> None:
    obj._change_reason = reason
    obj._history_user = actor_user(actor)
    with audit_context(actor=actor_label(actor)):
        obj.delete()


def bulk_create_tracked(
    model: type[models.Model], objs: Sequence[models.Model], *, actor: Actor, reason: str
) -> list[models.Model]:
    if not objs:
        return []
    return bulk_create_with_history(
        list(objs),
        model,
        batch_size=BATCH_SIZE,
        default_user=actor_user(actor),
        default_change_reason=reason,
        custom_historical_attrs=_history_attrs(actor),
    )


def bulk_update_tracked(
    model: type[models.Model],
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    actor: Actor,
    reason: str,
) -> None:
    if not objs:
        return
    bulk_update_with_history(
        list(objs),
        model,
        list(fields),
        batch_size=BATCH_SIZE,
        default_user=actor_user(actor),
        default_change_reason=reason,
        custom_historical_attrs=_history_attrs(actor),
    )
