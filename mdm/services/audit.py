"""Writing with history: one place that stamps actor, reason and correlation ID on history
rows, for single saves and for bulk writes alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone

from mdm.context import audit_context, correlation_id, current_actor
from mdm.db.copy import insert_history_of_rows, insert_rows
from mdm.db.update import update_rows  # one UPDATE ... FROM per call

# A steward (a Django user) or a named machine actor such as "system:ingest" or "integration:crm".
Actor = User | str | None

BATCH_SIZE = 1000


def actor_label(actor: Actor) -> str:
    if actor is None:
        return current_actor() or "system"
    if isinstance(actor, str):
        return actor
    return f"user:{actor.get_username()}"


def actor_user(actor: Actor) -> User | None:
    return None if actor is None or isinstance(actor, str) else actor


def _history_attrs(actor: Actor) -> dict[str, str]:
    return {"actor": actor_label(actor), "correlation_id": correlation_id()}


def _stamp(obj: models.Model, actor: Actor, reason: str) -> None:
    """What simple-history reads from the instance for the history row of its next save."""
    vars(obj).update(_change_reason=reason, _history_user=actor_user(actor))


def save_with_history(obj: models.Model, *, actor: Actor, reason: str, **save_kwargs: Any) -> None:
    _stamp(obj, actor, reason)
    with audit_context(actor=actor_label(actor)):
        obj.save(**save_kwargs)


def delete_with_history(obj: models.Model, *, actor: Actor, reason: str) -> None:
    _stamp(obj, actor, reason)
    with audit_context(actor=actor_label(actor)):
        obj.delete()


def bulk_create_tracked(
    model: type[models.Model], objs: Sequence[models.Model], *, actor: Actor, reason: str
) -> list[models.Model]:
    """Insert `objs` and one "+" history row each, stamped like a single save would be."""
    if not objs:
        return []
    objs = list(objs)
    insert_rows(model, objs, history_meta=_history_meta(actor, reason, "+"))
    return objs


def _history_meta(actor: Actor, reason: str, history_type: str) -> dict:
    user = actor_user(actor)
    return {
        "history_date": timezone.now(),
        "history_type": history_type,
        "history_user_id": user.pk if user is not None else None,
        "history_change_reason": reason,
        **_history_attrs(actor),
    }


def bulk_update_tracked(
    model: type[models.Model],
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    actor: Actor,
    reason: str,
) -> None:
    """Update `fields` of `objs` and write one "~" history row each, copied from the updated
    rows."""
    if not objs:
        return
    objs = list(objs)
    update_rows(model, objs, fields)
    insert_history_of_rows(model, [o.pk for o in objs], meta=_history_meta(actor, reason, "~"))
