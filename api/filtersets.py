"""Filters for golden record lists: active records unless a status is asked for (`any` for
all) or `updated_since` is (a sync sees every change). Attribute filters normalize the query
the way ingest normalizes values ("de 123 456 789" finds DE123456789), then match the
survived value.

A filter is no way round withheld attributes: without `golden:read_sensitive`, filtering by
an attribute sensitive on every record (tax ID) is refused (403), and by one sensitive on a
person's record (e-mail) finds only the records where it is not withheld (organizations)."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django.db.models import Exists, OuterRef, QuerySet
from django.http import QueryDict
from rest_framework.request import Request

from api.errors import Invalid
from api.scopes import only_organizations, refuse_sensitive_query
from mdm.entities import ENTITIES
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.normalize import normalizer_for

ANY_STATUS = "any"


def _normalized(entity_type: str, attribute: str, raw: str) -> str:
    entity = ENTITIES.get(entity_type) or ENTITIES["customer"]
    try:
        declared = entity.attribute(attribute)
    except KeyError:
        return raw
    result = normalizer_for(declared)(raw, {})
    return str(result.value) if result.value is not None else raw


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time, compared in UTC: PostgreSQL refuses offsets beyond ±15:59,
    which ISO 8601 allows."""

    def filter(self, qs: QuerySet, value: datetime | None) -> QuerySet:
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:
                raise Invalid(fields={"updated_since": ["out of range"]}) from None
        return super().filter(qs, value)


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
    updated_since = UtcDateTimeFilter(
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

    def __init__(self, data: QueryDict, *, entity_type: str, request: Request) -> None:
        super().__init__(
            data, queryset=GoldenRecord.objects.filter(entity_type=entity_type), request=request
        )
        self.entity_type = entity_type

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Active golden records unless a status is asked for — or `updated_since` is: a
        client syncing by it sees every change, merges and retirements included."""
        asked = self.form.cleaned_data
        if not asked.get("status") and not asked.get("updated_since"):
            queryset = queryset.filter(status=GoldenStatus.ACTIVE)
        return super().filter_queryset(queryset)

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset if value == ANY_STATUS else queryset.filter(status=value)

    def filter_value(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        queryset = queryset.filter(
            **{f"values__{name}": _normalized(self.entity_type, name, value)}
        )
        refuse_sensitive_query(self.request, self.entity_type, [name], asking="Filtering")
        if narrowed := only_organizations(self.request, self.entity_type, [name]):
            marker, organization = narrowed
            return queryset.filter(**{f"values__{marker}": organization})
        return queryset

    def filter_system(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        members = SourceRecord.objects.filter(
            golden=OuterRef("pk"), source_system__code=value.lower(), deleted=False
        )
        return queryset.filter(Exists(members))
