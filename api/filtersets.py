"""Filters for golden record lists. Attribute filters normalize the query the way ingest
normalizes values ("de 123 456 789" finds DE123456789), then match the survived value.

A filter is no way round withheld attributes: without `golden:read_sensitive`, filtering by
an attribute sensitive on every record (tax ID) is refused (403), and by one sensitive on a
person's record (e-mail) finds only the records where it is not withheld (organizations)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Exists, OuterRef
from rest_framework.exceptions import PermissionDenied

from api.scopes import GOLDEN_READ_SENSITIVE, reads_sensitive
from mdm.entities import ALWAYS, ENTITIES
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.normalize import normalizer_for


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
    status = django_filters.ChoiceFilter(choices=GoldenStatus.choices)

    class Meta:
        model = GoldenRecord
        fields = ["name", "tax_id", "email", "country", "system", "updated_since", "status"]

    def filter_value(self, queryset, name, value):
        entity_type = self.request.parser_context["kwargs"]["entity"] if self.request else ""
        queryset = queryset.filter(**{f"values__{name}": _normalized(entity_type, name, value)})
        entity = ENTITIES.get(entity_type)
        if entity is None or name not in entity.sensitive_attributes:
            return queryset
        if reads_sensitive(self.request):
            return queryset
        if entity.attribute(name).sensitive == ALWAYS or entity.organization is None:
            raise PermissionDenied(f"Filtering by {name} needs the {GOLDEN_READ_SENSITIVE} scope.")
        marker, organization = entity.organization
        return queryset.filter(**{f"values__{marker}": organization})

    def filter_system(self, queryset, name, value):
        members = SourceRecord.objects.filter(
            golden=OuterRef("pk"), source_system__code=value.lower(), deleted=False
        )
        return queryset.filter(Exists(members))
