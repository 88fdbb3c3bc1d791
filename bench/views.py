"""Bench only (KEYSTONE_BENCH_VIEWS): the floor the API's overhead is measured against — a
bare Django view doing one indexed query, no DRF, no authentication."""

from django.http import JsonResponse

from mdm.models import SourceRecord


def bare_xref(request, system: str, source_key: str):
    row = (
        SourceRecord.objects.filter(
            entity_type="customer", source_system__code=system, source_key=source_key
        )
        .values_list("golden_id", flat=True)
        .first()
    )
    if row is None:
        return JsonResponse({"found": False}, status=404)
    return JsonResponse({"golden_id": row})
