"""A model's column by name, as the helpers read it: `_meta.get_field` also answers with the
reverse side of a relation, which has no column."""

from __future__ import annotations

from typing import Any

from django.db import models


def column_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The field of `model` named `name` (or its attname): one with a column."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise ValueError(f"{model.__name__}.{name} is the reverse side of a relation, not a column")
    return field


def column_name(field: models.Field[Any, Any]) -> str:
    """The column of `field` (Django types it optional: a many-to-many field has none)."""
    if field.column is None:
        raise ValueError(f"{field} has no column")
    return field.column
