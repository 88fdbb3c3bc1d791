"""Filters for golden record lists: active records unless a status is asked for (`any` for
all). Attribute filters normalize the query the way ingest
normalizes values ("de 123 456 789" finds DE123456789), then match the survived value."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Exists, OuterRef

from mdm.entities import ENTITIES
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.normalize import normalizer_for

ANY_STATUS = "any"


def _normalized(entity_type: str, attribute: str, raw: str) -> Any:  # the canonical value
    entity = ENTITIES.get(entity_type) or ENTITIES["customer"]
    try:
        declared = entity.attribute(attribute)
    except KeyError:
        return raw
    result = normalizer_for(declared)(raw, {})
    return result.value if result.value is not None else raw


class GoldenRecordFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(
        field_name="display_name", lookup_expr="icontains", help_text="Part of the display name."
    )
    tax_id = django_filters.CharFilter(method="filter_value", help_text="Tax / VAT id.")
    email = django_filters.CharFilter(method="filter_value", help_text="E-mail address.")
    country = django_filters.CharFilter(
        method="filter_value", help_text="Country: ISO code or name."
    )
    system = django_filters.CharFilter(
        method="filter_system", help_text="Has a live member in this source system."
    )
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="ISO 8601 date-time."
    )
    status = django_filters.ChoiceFilter(
        choices=[*GoldenStatus.choices, (ANY_STATUS, "any status")],
        method="filter_status",
        help_text="active (the default), merged, retired, or any.",
    )

    class Meta:
        model = GoldenRecord
        fields = ["name", "tax_id", "email", "country", "system", "updated_since", "status"]

    def filter_queryset(self, queryset):
        """Active golden records unless a status is asked for."""
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status=GoldenStatus.ACTIVE)
        return super().filter_queryset(queryset)

    def filter_status(self, queryset, name, value):
        return queryset if value == ANY_STATUS else queryset.filter(status=value)

    def filter_value(self, queryset, name, value):
        entity_type = self.request.parser_context["kwargs"]["entity"] if self.request else ""
        return queryset.filter(**{f"values__{name}": _normalized(entity_type, name, value)})

    def filter_system(self, queryset, name, value):
        members = SourceRecord.objects.filter(
            golden=OuterRef("pk"), source_system__code=value.lower(), deleted=False
        )
        return queryset.filter(Exists(members))
