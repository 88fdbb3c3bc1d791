"""Distribution API v1. Views are thin: parse, call one service or selector, answer.

Access rules live in `api.permissions`, error mapping in `api.errors`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.errors import Conflict, PayloadTooLarge, Unprocessable, error_body
from api.filtersets import GoldenRecordFilterSet
from api.models import IdempotencyKey, IntegrationToken, WebhookDelivery, WebhookSubscription
from api.parsers import NdjsonRows
from api.permissions import INTEGRATION, actor_for, role_of, visible_subscriptions
from api.selectors import events_after, lookup_xref, lookup_xrefs, lookup_xrefs_as_of
from api.tasks import nudge_deliveries
from api.webhooks import create_subscription, replay
from mdm.entities import get_entity
from mdm.errors import GoldenRecordNotFound
from mdm.models import GoldenRecord, SourceRecord
from mdm.selectors import find_source_record, resolve_golden
from mdm.services.ingest import REJECTED, ingest_records

AS_OF = OpenApiParameter(
    "as_of",
    OpenApiTypes.DATETIME,
    description="Answer from history, as the cross-reference stood at this moment.",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Repeat-safe writes: the same key (within 24 h) replays the stored answer; "
    "the same key with a different request is refused with 409.",
)


def errors(*codes: int, **described: str) -> dict:
    return {
        code: OpenApiResponse(s.ErrorSerializer, description=described.get(f"e{code}", ""))
        for code in codes
    }


class KeystoneMixin:
    """Refuses bodies over KEYSTONE_API_MAX_BODY_BYTES before parsing them (413), and NUL
    characters in the path or query string (422): PostgreSQL text cannot hold them, so no
    key, ID or filter value can contain one (the driver would raise, a 500)."""

    def initial(self, request, *args, **kwargs):
        length = request.META.get("CONTENT_LENGTH") or 0
        try:
            too_big = int(length) > settings.KEYSTONE_API_MAX_BODY_BYTES
        except ValueError:
            too_big = False
        if too_big:
            raise PayloadTooLarge(f"The body is over {settings.KEYSTONE_API_MAX_BODY_BYTES} bytes.")
        super().initial(request, *args, **kwargs)
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            raise Unprocessable("NUL characters are not allowed in the path or query string.")
        if isinstance(request.auth, IntegrationToken):
            # DRF copies the principal onto the Django request; simple-history would then try
            # to store it as a history user. Integrations are recorded by actor label instead.
            request._request.user = AnonymousUser()


class KeystoneView(KeystoneMixin, APIView):
    pass


def parse_as_of(request):
    raw = request.query_params.get("as_of")
    if not raw:
        return None
    when = parse_datetime(raw.replace(" ", "+").replace("Z", "+00:00"))
    if when is None:
        raise Unprocessable("as_of is not an ISO 8601 date-time.", fields={"as_of": [raw]})
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# --- idempotency ------------------------------------------------------------------------------
def _principal(request) -> str:
    if isinstance(request.auth, IntegrationToken):
        return f"token:{request.auth.source_system_id}"
    return f"user:{request.user.pk}"


def _request_hash(request, body) -> str:
    text = json.dumps(
        [request.method, request.path, body],
        sort_keys=True,
        default=lambda value: getattr(value, "text", str(value)),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def idempotent(request, body, produce) -> Response:
    """Run `produce()` once per Idempotency-Key; store and replay its answer for 24 hours."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        return produce()
    if len(key) > 255:
        raise Unprocessable(fields={"Idempotency-Key": ["at most 255 characters"]})
    principal, digest = _principal(request), _request_hash(request, body)
    fresh_after = timezone.now() - timedelta(hours=settings.KEYSTONE_API_IDEMPOTENCY_HOURS)
    stored = IdempotencyKey.objects.filter(
        principal=principal, key=key, created_at__gte=fresh_after
    ).first()
    if stored is not None:
        if stored.request_hash != digest:
            raise Conflict("This Idempotency-Key was used for a different request.")
        response = Response(stored.response_body, status=stored.status_code)
        response["Idempotent-Replayed"] = "true"
        return response
    response = produce()
    if response.status_code < 500:
        # A concurrent request with the same key may store first; ingest is idempotent.
        with contextlib.suppress(IntegrityError):
            IdempotencyKey.objects.update_or_create(
                principal=principal,
                key=key,
                defaults={
                    "request_hash": digest,
                    "status_code": response.status_code,
                    "response_body": response.data,
                    "created_at": timezone.now(),
                },
            )
    return response


# --- ingest -----------------------------------------------------------------------------------
def _flagged(summary, line) -> list[dict]:
    return [
        {"attribute": attribute, "reason": reason}
        for flagged_line, attribute, reason in summary.flagged
        if flagged_line == line
    ]


class SourceRecordView(KeystoneView):
    write_scope = "source"

    @extend_schema(
        operation_id="source_record_upsert",
        tags=["ingest"],
        summary="Create or update one source record",
        parameters=[IDEMPOTENCY_KEY],
        request=s.SourceRecordBodySerializer,
        responses={
            200: s.IngestOutcomeSerializer,
            201: s.IngestOutcomeSerializer,
            **errors(409, 413, e422="Rejected: the reason is in `message`; kept for replay."),
        },
    )
    def put(self, request, system: str, entity: str, source_key: str):
        get_entity(entity)
        body = request.data
        if not isinstance(body, dict):
            raise Unprocessable("The body must be a JSON object of attributes.")
        given = body.get("source_key")
        if given not in (None, "") and str(given) != source_key:
            raise Unprocessable(
                fields={"source_key": [f"the body says {given!r}, the path {source_key!r}"]}
            )
        row = {**body, "source_key": source_key}
        return idempotent(request, body, lambda: self._ingest(request, system, entity, row))

    @extend_schema(
        operation_id="source_record_delete",
        tags=["ingest"],
        summary="Tombstone one source record",
        description="The record is kept as a tombstone; its golden record is recomputed "
        "without it (retired when no live member remains).",
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={200: s.IngestOutcomeSerializer, **errors(409)},
    )
    def delete(self, request, system: str, entity: str, source_key: str):
        get_entity(entity)
        record = find_source_record(entity, system.lower(), source_key)
        if record is None:
            raise GoldenRecordNotFound(f"{entity} {system}:{source_key}")
        row = {k: v for k, v in record.raw.items() if k != "source_updated_at"}
        row.update(source_key=source_key, deleted=True)
        return idempotent(request, None, lambda: self._ingest(request, system, entity, row))

    def _ingest(self, request, system, entity, row) -> Response:
        summary = ingest_records(
            entity_type=entity,
            system_code=system,
            rows=[(1, row)],
            actor=actor_for(request),
            reason=f"api {request.method}",
            origin=f"api {request.method} {request.path}"[:255],
            collect_results=True,
        )
        result = summary.results[0]
        if result.outcome == REJECTED:
            return Response(
                error_body("rejected", result.reason), status=status.HTTP_422_UNPROCESSABLE_ENTITY
            )
        answer = {
            "system": system.lower(),
            "entity": entity,
            "source_key": result.source_key,
            "outcome": result.outcome,
            "golden_id": result.golden_id,
            "flagged": _flagged(summary, 1),
        }
        code = status.HTTP_201_CREATED if result.outcome == "loaded" else status.HTTP_200_OK
        return Response(answer, status=code)


class SourceBatchView(KeystoneView):
    write_scope = "source"

    @extend_schema(
        operation_id="source_records_batch",
        tags=["ingest"],
        summary="Load up to 10,000 source records",
        description="A JSON array of records, or NDJSON (`Content-Type: application/x-ndjson`, "
        "one object per line). Each record carries its `source_key`. Results come in request "
        "order; a bad record is rejected (and kept for replay) without failing the others.",
        parameters=[IDEMPOTENCY_KEY],
        request={
            "application/json": {"type": "array", "items": {"type": "object"}},
            "application/x-ndjson": {"type": "string"},
        },
        responses={200: s.BatchResultSerializer, **errors(409, 413)},
    )
    def post(self, request, system: str, entity: str):
        get_entity(entity)
        body = request.data
        if isinstance(body, NdjsonRows):
            rows = list(body)
        elif isinstance(body, list):
            rows = list(enumerate(body, start=1))
        else:
            raise Unprocessable("The body must be a JSON array or NDJSON of records.")
        if len(rows) > settings.KEYSTONE_API_MAX_BATCH:
            raise PayloadTooLarge(f"At most {settings.KEYSTONE_API_MAX_BATCH} records per batch.")
        return idempotent(request, rows, lambda: self._ingest(request, system, entity, rows))

    def _ingest(self, request, system, entity, rows) -> Response:
        summary = ingest_records(
            entity_type=entity,
            system_code=system,
            rows=rows,
            actor=actor_for(request),
            reason="api batch",
            origin=f"api batch {request.path}"[:255],
            collect_results=True,
        )
        index_of = {line: index for index, (line, _) in enumerate(rows)}
        flagged: dict[int, list[dict]] = {}
        for line, attribute, reason in summary.flagged:
            flagged.setdefault(line, []).append({"attribute": attribute, "reason": reason})
        results = sorted(summary.results, key=lambda r: index_of[r.line])
        return Response(
            {
                "system": system.lower(),
                "entity": entity,
                "counts": summary.counts,
                "results": [
                    {
                        "index": index_of[r.line],
                        "line": r.line,
                        "source_key": r.source_key,
                        "outcome": r.outcome,
                        "golden_id": r.golden_id,
                        "reason": r.reason,
                        "flagged": flagged.get(r.line, []),
                    }
                    for r in results
                ],
            }
        )


# --- cross-reference --------------------------------------------------------------------------
class XrefView(KeystoneView):
    @extend_schema(
        operation_id="xref_get",
        tags=["xref"],
        summary="Golden ID and every key of one source record's golden record",
        parameters=[AS_OF],
        responses={200: s.XrefResultSerializer, **errors()},
    )
    def get(self, request, entity: str, system: str, source_key: str):
        when = parse_as_of(request)
        system = system.lower()
        if when:
            result = lookup_xrefs_as_of(entity, [(system, source_key)], when)[0]
        else:
            result = lookup_xref(entity, system, source_key)
        if not result["found"]:
            raise GoldenRecordNotFound(f"{entity} {system}:{source_key}")
        return Response(result)


class XrefLookupView(KeystoneView):
    read_only_post = True

    @extend_schema(
        operation_id="xref_lookup",
        tags=["xref"],
        summary="Look up to 1,000 keys at once",
        description="Answered in request order; unknown keys come back with `found: false`.",
        parameters=[AS_OF],
        request=s.XrefLookupRequestSerializer,
        responses={200: s.XrefLookupResponseSerializer, **errors(413)},
    )
    def post(self, request, entity: str):
        get_entity(entity)
        when = parse_as_of(request)
        keys = self._keys(request.data)
        results = lookup_xrefs_as_of(entity, keys, when) if when else lookup_xrefs(entity, keys)
        return Response({"results": results})

    @staticmethod
    def _keys(body) -> list[tuple[str, str]]:
        """Validated by hand: a DRF serializer costs more than the lookup for 1,000 keys."""
        items = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise Unprocessable(fields={"keys": ["a list of {system, source_key} objects"]})
        if len(items) > settings.KEYSTONE_API_MAX_LOOKUP_KEYS:
            raise PayloadTooLarge(f"At most {settings.KEYSTONE_API_MAX_LOOKUP_KEYS} keys.")
        keys, problems = [], {}
        for index, item in enumerate(items):
            system = item.get("system") if isinstance(item, dict) else None
            key = item.get("source_key") if isinstance(item, dict) else None
            if isinstance(key, int) and not isinstance(key, bool):
                key = str(key)
            if not isinstance(system, str) or not system or not isinstance(key, str) or not key:
                problems[f"keys[{index}]"] = ["needs a system and a source_key (strings)"]
                continue
            keys.append((system.lower(), key))
        if problems:
            raise Unprocessable(fields=problems)
        return keys


# --- match probe ----------------------------------------------------------------------------
class MatchProbeView(KeystoneView):
    read_only_post = True

    @extend_schema(
        operation_id="match_probe",
        tags=["match"],
        summary="Does this thing already exist? Ranked candidate golden records",
        description="Scores the attributes against existing records with the active match "
        "model; writes nothing. 409 when no model has been trained for the entity type.",
        request=s.MatchProbeRequestSerializer,
        responses={200: s.MatchProbeResponseSerializer, **errors(409)},
    )
    def post(self, request, entity: str):
        from matching.services import probe_matches

        get_entity(entity)
        body = s.MatchProbeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        matches = probe_matches(
            entity_type=entity,
            attributes=body.validated_data["attributes"],
            limit=body.validated_data["limit"],
        )
        candidates = [
            {**m.as_dict(), "url": s.golden_url(request, m.golden_id, entity)} for m in matches
        ]
        for candidate in candidates:
            candidate.pop("source_record_id", None)
        return Response({"candidates": candidates})


# --- golden records ---------------------------------------------------------------------------
class GoldenPagination(CursorPagination):
    ordering = ("-updated_at", "id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class HistoryPagination(CursorPagination):
    ordering = ("-history_date", "-history_id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


def _golden_or_404(entity: str, golden_id: str) -> tuple[GoldenRecord, list[str]]:
    get_entity(entity)
    golden, chain = resolve_golden(golden_id)
    if golden.entity_type != entity:
        raise GoldenRecordNotFound(golden_id)
    return golden, chain


class GoldenListView(KeystoneView):
    @extend_schema(
        operation_id="golden_list",
        tags=["golden"],
        summary="List and search golden records",
        parameters=[
            OpenApiParameter("name", str, description="Part of the display name."),
            OpenApiParameter("tax_id", str, description="Tax / VAT id (normalized)."),
            OpenApiParameter("email", str, description="E-mail address."),
            OpenApiParameter("country", str, description="Country: ISO code or name."),
            OpenApiParameter("system", str, description="Has a live member in this system."),
            OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
            OpenApiParameter("status", str, enum=["active", "merged", "retired"]),
            OpenApiParameter("cursor", str, description="From `next` / `previous`."),
            OpenApiParameter("limit", int, description="Page size (at most 500)."),
        ],
        responses={200: s.GoldenPageSerializer, **errors()},
    )
    def get(self, request, entity: str):
        get_entity(entity)
        filterset = GoldenRecordFilterSet(
            request.query_params,
            queryset=GoldenRecord.objects.filter(entity_type=entity),
            request=request,
        )
        if not filterset.is_valid():
            raise Unprocessable(
                "Invalid filters.",
                fields={k: [str(m) for m in v] for k, v in filterset.errors.items()},
            )
        paginator = GoldenPagination()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        data = s.GoldenSummarySerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)


class GoldenDetailView(KeystoneView):
    @extend_schema(
        operation_id="golden_get",
        tags=["golden"],
        summary="One golden record: values, lineage, members and relations",
        responses={
            200: s.GoldenDetailSerializer,
            308: OpenApiResponse(
                s.MergedRedirectSerializer,
                description="Merged: `Location` names the surviving record (chains followed).",
            ),
            **errors(),
        },
    )
    def get(self, request, entity: str, golden_id: str):
        golden, chain = _golden_or_404(entity, golden_id)
        if chain:
            location = s.golden_url(request, golden, entity)
            response = Response(
                {
                    "id": golden_id,
                    "status": "merged",
                    "merged_into": golden.pk,
                    "chain": chain,
                    "location": location,
                },
                status=status.HTTP_308_PERMANENT_REDIRECT,
            )
            response["Location"] = location
            return response
        golden = (
            GoldenRecord.objects.prefetch_related(
                Prefetch("members", SourceRecord.objects.select_related("source_system")),
                Prefetch("merged_from", GoldenRecord.objects.only("id", "merged_into_id")),
            )
            .filter(pk=golden.pk)
            .get()
        )
        return Response(s.GoldenDetailSerializer(golden, context={"request": request}).data)


class GoldenHistoryView(KeystoneView):
    @extend_schema(
        operation_id="golden_history",
        tags=["golden"],
        summary="Every recorded version of a golden record, newest first",
        responses={200: s.GoldenHistoryPageSerializer, **errors()},
    )
    def get(self, request, entity: str, golden_id: str):
        get_entity(entity)
        if not GoldenRecord.objects.filter(pk=golden_id, entity_type=entity).exists():
            raise GoldenRecordNotFound(golden_id)
        paginator = HistoryPagination()
        page = paginator.paginate_queryset(
            GoldenRecord.history.filter(id=golden_id), request, view=self
        )
        return paginator.get_paginated_response(s.GoldenHistorySerializer(page, many=True).data)


# --- events -----------------------------------------------------------------------------------
class EventFeedView(KeystoneView):
    @extend_schema(
        operation_id="events_list",
        tags=["events"],
        summary="The ordered, gap-free feed of changes",
        description="Events with a sequence number above `after`, in order, up to the "
        "high-water mark below which no event can still appear. Poll with `after = "
        "next_after`. Every event's `id` is its sequence number and de-duplication key.",
        parameters=[
            OpenApiParameter("after", int, description="Last sequence number seen (default 0)."),
            OpenApiParameter("limit", int, description="At most this many (1–1000, default 100)."),
            OpenApiParameter("type", str, many=True, description="Only these event types."),
        ],
        responses={200: s.EventFeedSerializer, **errors()},
    )
    def get(self, request):
        after = self._int(request, "after", 0, 0, 2**63 - 1)
        limit = self._int(request, "limit", 100, 1, 1000)
        types = request.query_params.getlist("type")
        events, mark = events_after(after, limit, event_types=types)
        return Response(
            {
                "events": s.EventSerializer(events, many=True).data,
                "next_after": events[-1].id if events else after,
                "high_water_mark": mark,
            }
        )

    @staticmethod
    def _int(request, name, default, low, high) -> int:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise Unprocessable(fields={name: ["an integer"]}) from None
        if not low <= value <= high:
            raise Unprocessable(fields={name: [f"between {low} and {high}"]})
        return value


# --- webhooks ---------------------------------------------------------------------------------
class DeliveryPagination(CursorPagination):
    ordering = ("-id",)
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


@extend_schema(tags=["webhooks"])
class WebhookSubscriptionViewSet(
    KeystoneMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Webhook subscriptions. An integration sees and manages only its own."""

    serializer_class = s.WebhookSubscriptionSerializer
    write_scope = "webhooks"
    pagination_class = DeliveryPagination

    def get_queryset(self):
        queryset = WebhookSubscription.objects.select_related("owner")
        return visible_subscriptions(self.request, queryset)

    @extend_schema(responses={201: s.WebhookSubscriptionCreatedSerializer, **errors()})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        owner = request.auth.source_system if role_of(request) == INTEGRATION else None
        subscription = create_subscription(owner=owner, **serializer.validated_data)
        body = s.WebhookSubscriptionCreatedSerializer(subscription).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={200: s.WebhookDeliveryPageSerializer, **errors()},
        parameters=[
            OpenApiParameter("status", str, enum=["pending", "delivered", "failed", "dead"])
        ],
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        subscription = self.get_object()
        deliveries = WebhookDelivery.objects.filter(subscription=subscription).select_related(
            "event"
        )
        if wanted := request.query_params.get("status"):
            deliveries = deliveries.filter(status=wanted)
        paginator = DeliveryPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(s.WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        request=s.ReplayRequestSerializer,
        responses={200: s.ReplayResponseSerializer, **errors()},
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        subscription = self.get_object()
        body = s.ReplayRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = replay(subscription=subscription, after=body.validated_data["after"])
        connection.on_commit(nudge_deliveries)
        return Response({"replayed": count})


# --- health -----------------------------------------------------------------------------------
class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="healthz", tags=["health"], responses={200: s.HealthSerializer}, auth=[]
    )
    def get(self, request):
        return Response({"status": "ok"})


class ReadyView(HealthView):
    @extend_schema(
        operation_id="readyz",
        tags=["health"],
        responses={200: s.HealthSerializer, 503: s.HealthSerializer},
        auth=[],
    )
    def get(self, request):
        checks = {"database": _check_database(), "broker": _check_broker()}
        ready = all(value == "ok" for value in checks.values())
        return Response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return f"error: {type(error).__name__}"


def _check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://"):
        return "ok"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return "ok"
    except Exception as error:  # noqa: BLE001
        return f"error: {type(error).__name__}"
