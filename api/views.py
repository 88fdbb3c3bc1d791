"""Distribution API v1. Views are thin: check the request, call one service or selector,
answer with a serializer's output.

Access rules live in `api.permissions`, error codes in `api.errors`, request guards in
`api.guards`, paging in `api.pagination`, repeat-safe writes in `api.idempotency`, ETags in
`api.conditional`; each operation's documented contract (`schema`) sits next to its code.
Operations whose shapes depend on the entity type are routed once per entity type
(`api.urls`), so each has its own typed request and response.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.db.models import Prefetch
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import scopes
from api import serializers as s
from api.conditional import conditional_get, etag_of, require_current
from api.errors import Invalid, NotFound, PayloadTooLarge, error_body
from api.filtersets import GoldenRecordFilterSet
from api.guards import int_parameter, refuse_large_body, refuse_nul, refuse_unknown_parameters
from api.idempotency import idempotent
from api.models import IntegrationToken, WebhookDelivery, WebhookSubscription
from api.pagination import PAGE_PARAMETERS, KeystonePagination, next_cursor
from api.parsers import JSONParser, NDJSONParser, RecordRows
from api.permissions import INTEGRATION, actor_for, role_of, visible_subscriptions
from api.selectors import events_after, lookup_xref, lookup_xrefs, lookup_xrefs_as_of
from api.tasks import nudge_deliveries
from api.throttling import rate_limit_headers
from api.webhooks import create_subscription, replay
from mdm.contracts import COMPATIBILITY_RULE, EVENT_TYPES, EVENT_VERSIONS, event_schemas
from mdm.entities import ENTITIES, get_entity
from mdm.errors import GoldenRecordNotFound, SourceRecordNotFound
from mdm.mappings import CompiledMapping, compile_mapping
from mdm.models import GoldenRecord, SourceMapping, SourceRecord
from mdm.selectors import active_mapping, find_source_record, resolve_golden
from mdm.services.ingest import REJECTED, Addressed, ingest_records, unstorable_reason
from mdm.services.mappings import preview_mapping, save_mapping_version

Schema = dict[str, dict[str, Any]]  # HTTP method -> extend_schema arguments


def component(name: str) -> dict[str, str]:
    return s.component(name)


ENTITY_PARAMETER = OpenApiParameter(
    "entity", component("Entity"), OpenApiParameter.PATH, description="Entity type."
)
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
    "the same key with a different request is refused with 409 `idempotency_key_reused`.",
)
REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    response=True,
    enum=["true"],
    description="`true` when this is the stored answer to an earlier request with the key.",
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, description="An ETag: 304 if unchanged."
)
ETAG = OpenApiParameter(
    "ETag", str, OpenApiParameter.HEADER, response=[200, 304], description="The version."
)
LINK = OpenApiParameter(
    "Link",
    str,
    OpenApiParameter.HEADER,
    response=[200],
    description='`<next page URL>; rel="next"`, absent on the last page.',
)
CURSOR = OpenApiParameter("cursor", str, description="`next_cursor` of the previous page.")


def limit_parameter(default: int, maximum: int) -> OpenApiParameter:
    return OpenApiParameter(
        "limit", int, description=f"Page size, 1–{maximum} (default {default}); else 422."
    )


def errors(*codes: int, **described: str) -> dict[int, OpenApiResponse]:
    """Operation-specific error answers (the common ones are added by `api.schema`)."""
    return {
        code: OpenApiResponse(s.ErrorSerializer, description=described.get(f"e{code}", ""))
        for code in codes
    }


def parse_as_of(request: Request) -> datetime | None:
    raw = request.query_params.get("as_of")
    if not raw:
        return None
    when = parse_datetime(raw.replace(" ", "+").replace("Z", "+00:00"))
    if when is None:
        raise Invalid("as_of is not an ISO 8601 date-time.", fields={"as_of": [raw]})
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class KeystoneView(APIView):
    """Base of every API view: guards (body size before parsing, NUL, undeclared query
    parameters) and rate-limit headers on the answer.

    `entity` is set per route for operations typed per entity type; `query_parameters`
    lists the query parameters the operation declares (anything else is 422)."""

    entity: str = ""
    query_parameters: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def schema_for(cls, entity: str) -> Schema:
        """The documented contract per HTTP method, for one entity type (or "")."""
        return {}

    def body_limit(self) -> int:
        """The most bytes a request body may have (413 past it, before parsing)."""
        return settings.KEYSTONE_API_MAX_OBJECT_BYTES

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        refuse_large_body(request, self.body_limit())
        super().initial(request, *args, **kwargs)
        refuse_nul(request)
        refuse_unknown_parameters(request, self.query_parameters)
        if isinstance(request.auth, IntegrationToken):
            # DRF copies the principal onto the Django request; simple-history would then try
            # to store it as a history user. Integrations are recorded by actor label instead.
            request._request.user = AnonymousUser()

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in rate_limit_headers(request):
            response[name] = value
        return response


# --- ingest -----------------------------------------------------------------------------------
def _flagged(summary: Any, line: int | None) -> list[dict[str, str]]:
    return [
        {"attribute": attribute, "reason": reason}
        for flagged_line, attribute, reason in summary.flagged
        if flagged_line == line
    ]


def _record_body(body: Any) -> dict[str, Any]:
    """The PUT body: a JSON object carrying at least one attribute or reference."""
    if not isinstance(body, dict):
        raise Invalid(
            "The body must be a JSON object of attributes.",
            fields={"body": ["a JSON object of the entity's attributes"]},
        )
    return body


class SourceRecordView(KeystoneView):
    required_scope = scopes.SOURCES_WRITE

    @classmethod
    def schema_for(cls, entity: str) -> Schema:
        record = f"{ENTITIES[entity].name.capitalize()}RecordInput"
        return {
            "put": dict(
                operation_id=f"{entity}_record_upsert",
                tags=["ingest"],
                summary=f"Create or update one {entity} source record",
                parameters=[IDEMPOTENCY_KEY, REPLAYED],
                request={"application/json": component(record)},
                responses={
                    200: s.IngestResultSerializer,
                    201: OpenApiResponse(
                        s.IngestResultSerializer,
                        description="Created; `Location` is the record's URL.",
                    ),
                    **errors(
                        409,
                        e422="Invalid (`invalid`), or ingest refused the record (`rejected`: "
                        "the reason in `message`; kept for replay).",
                    ),
                },
            ),
            "delete": dict(
                operation_id=f"{entity}_record_delete",
                tags=["ingest"],
                summary=f"Tombstone one {entity} source record",
                description="The record is kept as a tombstone; its golden record is recomputed "
                "without it (retired when no live member remains).",
                parameters=[IDEMPOTENCY_KEY, REPLAYED],
                request=None,
                responses={200: s.IngestResultSerializer, **errors(409)},
            ),
        }

    def put(self, request: Request, system: str, source_key: str) -> Response:
        body = _record_body(request.data)
        mapping = active_mapping(system_code=system.lower(), entity_type=self.entity)
        if mapping is not None:
            # a native payload: its mapping finds the key (it must be the URL's) and attributes
            native = Addressed(body, source_key)
            return idempotent(request, body, lambda: self._ingest(request, system, native, mapping))
        given = body.get("source_key")
        if given not in (None, "") and str(given) != source_key:
            raise Invalid(
                fields={"source_key": [f"the body says {given!r}, the path {source_key!r}"]}
            )
        declared = ENTITIES[self.entity].declared_columns | {"deleted"}
        if not declared & body.keys():
            raise Invalid(
                "The body names none of the entity's attributes or references.",
                fields={"body": [f"at least one of: {', '.join(sorted(declared))}"]},
            )
        row = {**body, "source_key": source_key}
        return idempotent(request, body, lambda: self._ingest(request, system, row, None))

    def delete(self, request: Request, system: str, source_key: str) -> Response:
        record = find_source_record(self.entity, system.lower(), source_key)
        if record is None:
            raise SourceRecordNotFound(self.entity, system.lower(), source_key)
        tombstone: Any
        mapping = active_mapping(system_code=system.lower(), entity_type=self.entity)
        if mapping is not None:
            tombstone = Addressed(record.raw, source_key, deleted=True)
        else:
            tombstone = {k: v for k, v in record.raw.items() if k != "source_updated_at"}
            tombstone.update(source_key=source_key, deleted=True)
        return idempotent(request, None, lambda: self._ingest(request, system, tombstone, mapping))

    def _ingest(
        self, request: Request, system: str, row: Any, mapping: CompiledMapping | None
    ) -> Response:
        summary = ingest_records(
            mapping=mapping,
            entity_type=self.entity,
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
                error_body("rejected", result.reason, {"body": [result.reason_code]}),
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        answer = s.IngestResultSerializer(
            {
                "system": system.lower(),
                "entity": self.entity,
                "source_key": result.source_key,
                "outcome": result.outcome,
                "golden_id": result.golden_id,
                "flagged": _flagged(summary, 1),
            }
        ).data
        if result.outcome == "loaded":
            return Response(
                answer,
                status=status.HTTP_201_CREATED,
                headers={"Location": request.build_absolute_uri(request.path)},
            )
        return Response(answer)


class SourceBatchView(KeystoneView):
    required_scope = scopes.SOURCES_WRITE
    parser_classes = (JSONParser, NDJSONParser)

    def body_limit(self) -> int:
        return settings.KEYSTONE_API_MAX_BODY_BYTES  # records are parsed one at a time

    @classmethod
    def schema_for(cls, entity: str) -> Schema:
        prefix = ENTITIES[entity].name.capitalize()
        return {
            "post": dict(
                operation_id=f"{entity}_records_batch",
                tags=["ingest"],
                summary=f"Load up to 10,000 {entity} source records",
                description='`{"records": [...]}` (or a bare JSON array of records), or '
                "NDJSON (`Content-Type: application/x-ndjson`, one record per line). Each "
                "record carries its `source_key`. Results come in request order; a bad record "
                "is rejected (kept for replay, with `reason` and `reason_code`) without failing "
                "the others.",
                parameters=[IDEMPOTENCY_KEY, REPLAYED],
                request={
                    "application/json": component(f"{prefix}BatchInput"),
                    "application/x-ndjson": {
                        "type": "string",
                        "format": "binary",
                        "description": f"One {prefix}BatchRecordInput object per line.",
                    },
                },
                responses={200: s.BatchResultSerializer, **errors(409)},
            )
        }

    def post(self, request: Request, system: str) -> Response:
        body = request.data  # the parsers give a batch's records as RecordRows, at most the limit
        if not isinstance(body, RecordRows):
            raise Invalid(
                'The body must be {"records": [...]}, a JSON array or NDJSON of records.',
                fields={"records": ["a list of records"]},
            )
        rows = list(body)
        return idempotent(request, rows, lambda: self._ingest(request, system, rows))

    def _ingest(self, request: Request, system: str, rows: list[tuple[int, Any]]) -> Response:
        summary = ingest_records(
            entity_type=self.entity,
            system_code=system,
            rows=rows,
            actor=actor_for(request),
            reason="api batch",
            origin=f"api batch {request.path}"[:255],
            collect_results=True,
        )
        index_of: dict[int | None, int] = {line: index for index, (line, _) in enumerate(rows)}
        flagged: dict[int | None, list[dict]] = {}
        for line, attribute, reason in summary.flagged:
            flagged.setdefault(line, []).append({"attribute": attribute, "reason": reason})
        results = sorted(summary.results, key=lambda r: index_of[r.line])
        return Response(
            s.BatchResultSerializer(
                {
                    "system": system.lower(),
                    "entity": self.entity,
                    "counts": summary.counts,
                    "results": [
                        {
                            "index": index_of[r.line],
                            "line": r.line,
                            "source_key": r.source_key,
                            "outcome": r.outcome,
                            "golden_id": r.golden_id,
                            "reason": r.reason,
                            "reason_code": r.reason_code,
                            "flagged": flagged.get(r.line, []),
                        }
                        for r in results
                    ],
                }
            ).data
        )


# --- cross-reference --------------------------------------------------------------------------
class XrefView(KeystoneView):
    required_scope = scopes.XREF_READ
    """The integrations' hot path: one prepared query, the answer built as a dict by the
    selector (documented by `XrefResultSerializer`), its ETag digested from that dict."""

    query_parameters = ("as_of",)

    @extend_schema(
        operation_id="xref_get",
        tags=["xref"],
        summary="Golden ID and every key of one source record's golden record",
        parameters=[ENTITY_PARAMETER, AS_OF, IF_NONE_MATCH, ETAG],
        responses={
            200: s.XrefResultSerializer,
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
        },
    )
    def get(self, request: Request, entity: str, system: str, source_key: str) -> Response:
        when = parse_as_of(request)
        system = system.lower()
        if when:
            result = lookup_xrefs_as_of(entity, [(system, source_key)], when)[0]
        else:
            result = lookup_xref(entity, system, source_key)
        if not result["found"]:
            raise SourceRecordNotFound(entity, system, source_key)
        return conditional_get(request, result)


class XrefLookupView(KeystoneView):
    required_scope = scopes.XREF_READ
    read_only_post = True
    query_parameters = ("as_of",)

    @extend_schema(
        operation_id="xref_lookup",
        tags=["xref"],
        summary="Look up to 1,000 keys at once",
        description="Answered in request order; unknown keys come back with `found: false`.",
        parameters=[ENTITY_PARAMETER, AS_OF],
        request=s.XrefLookupSerializer,
        responses={200: s.XrefLookupResultSerializer},
    )
    def post(self, request: Request, entity: str) -> Response:
        get_entity(entity)
        when = parse_as_of(request)
        keys = self._keys(request.data)
        results = lookup_xrefs_as_of(entity, keys, when) if when else lookup_xrefs(entity, keys)
        return Response({"results": results})

    @staticmethod
    def _keys(body: Any) -> list[tuple[str, str]]:
        """Validated by hand: a DRF serializer costs more than the lookup for 1,000 keys."""
        items = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise Invalid(fields={"keys": ["a list of {system, source_key} objects"]})
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
            raise Invalid(fields=problems)
        return keys


# --- match probe ------------------------------------------------------------------------------
class MatchProbeView(KeystoneView):
    required_scope = scopes.MATCH_PROBE
    read_only_post = True

    @classmethod
    def schema_for(cls, entity: str) -> Schema:
        attributes = f"{ENTITIES[entity].name.capitalize()}AttributesInput"
        return {
            "post": dict(
                operation_id=f"{entity}_match_probe",
                tags=["match"],
                summary=f"Does this {entity} already exist? Ranked candidate golden records",
                description="Scores the attributes against existing records with the active "
                "match model; writes nothing. 409 `no_active_model` when no model has been "
                "trained for the entity type.",
                request={
                    "application/json": {
                        "type": "object",
                        "properties": {
                            "attributes": component(attributes),
                            "limit": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 100,
                                "default": 10,
                            },
                        },
                        "required": ["attributes"],
                    }
                },
                responses={200: s.MatchProbeResultSerializer, **errors(409)},
            )
        }

    def post(self, request: Request) -> Response:
        from matching.services import probe_matches

        attributes, limit = self._body(request.data)
        asked = [name for name, value in attributes.items() if value not in (None, "")]
        scopes.refuse_sensitive_query(request, self.entity, asked, asking="Probing")
        narrowed = scopes.only_organizations(request, self.entity, asked)
        matches = probe_matches(
            entity_type=self.entity, attributes=attributes, limit=100 if narrowed else limit
        )
        if narrowed:
            matches = self._holding(narrowed, matches)[:limit]
        sensitive = scopes.reads_sensitive(request)
        candidates = [
            {
                **{k: v for k, v in m.as_dict().items() if k != "source_record_id"},
                "explanation": scopes.visible_explanation(
                    self.entity, m.explanation, sensitive=sensitive
                ),
                "url": s.golden_url(request, m.golden_id, self.entity),
            }
            for m in matches
        ]
        return Response(s.MatchProbeResultSerializer({"candidates": candidates}).data)

    @staticmethod
    def _holding(condition: tuple[str, str], matches: list[Any]) -> list[Any]:
        """The matches whose golden records hold `condition` (attribute, value)."""
        marker, value = condition
        holding = set(
            GoldenRecord.objects.filter(
                pk__in=[m.golden_id for m in matches], **{f"values__{marker}": value}
            ).values_list("pk", flat=True)
        )
        return [m for m in matches if m.golden_id in holding]

    @staticmethod
    def _body(body: Any) -> tuple[dict[str, Any], int]:
        attributes = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, dict):
            raise Invalid(fields={"attributes": ["an object of the entity's attributes"]})
        problems = [  # what ingest would refuse for an attribute: more than one value, or text
            f"{name}: {problem}"  # no record can hold (a NUL, a lone surrogate)
            for name, value in attributes.items()
            if (problem := _unusable_attribute(value))
        ]
        if problems:
            raise Invalid(fields={"attributes": problems})
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise Invalid(fields={"limit": ["an integer between 1 and 100"]})
        return attributes, limit


def _unusable_attribute(value: Any) -> str | None:
    if value is not None and not isinstance(value, str | int | float | bool):
        return "expected a single value"
    return unstorable_reason(value) if isinstance(value, str) else None


# --- golden records ---------------------------------------------------------------------------
GOLDEN_FILTERS = ("name", "tax_id", "email", "country", "system", "updated_since", "status")


def golden_pagination() -> KeystonePagination:
    return KeystonePagination(ordering=("-updated_at", "id"), page_size=50, max_page_size=500)


def history_pagination() -> KeystonePagination:
    return KeystonePagination(
        ordering=("-history_date", "-history_id"), page_size=50, max_page_size=500
    )


def _golden(entity: str, golden_id: str) -> tuple[GoldenRecord, list[str]]:
    golden, chain = resolve_golden(golden_id)
    if golden.entity_type != entity:
        raise GoldenRecordNotFound(golden_id)
    return golden, chain


class GoldenListView(KeystoneView):
    required_scope = scopes.GOLDEN_READ
    query_parameters = (*GOLDEN_FILTERS, *PAGE_PARAMETERS)

    @classmethod
    def schema_for(cls, entity: str) -> Schema:
        return {
            "get": dict(
                operation_id=f"{entity}_golden_list",
                tags=["golden"],
                summary=f"List and search {entity} golden records, newest change first",
                description="`updated_since` summarizes the events feed: every change of a "
                "golden record (values, status, members, relations) moves its `updated_at`.",
                parameters=[
                    OpenApiParameter("name", str, description="Part of the display name."),
                    OpenApiParameter("tax_id", str, description="Tax / VAT id (normalized)."),
                    OpenApiParameter("email", str, description="E-mail address."),
                    OpenApiParameter("country", str, description="Country: ISO code or name."),
                    OpenApiParameter(
                        "system", str, description="Has a live member in this system."
                    ),
                    OpenApiParameter(
                        "updated_since",
                        OpenApiTypes.DATETIME,
                        description="Changed at or after this moment.",
                    ),
                    OpenApiParameter(
                        "status",
                        component("GoldenStatusFilter"),
                        description="active unless asked for (or `updated_since` is given: "
                        "every status); any: every status.",
                    ),
                    CURSOR,
                    limit_parameter(50, 500),
                    LINK,
                ],
                responses={200: s.entity_serializers(entity).page},
            )
        }

    def get(self, request: Request) -> Response:
        filterset = GoldenRecordFilterSet(
            request.query_params, entity_type=self.entity, request=request
        )
        if not filterset.is_valid():
            raise Invalid(
                "Invalid filters.",
                fields={k: [str(m) for m in v] for k, v in filterset.errors.items()},
            )
        paginator = golden_pagination()
        page = paginator.page(filterset.qs, request)
        serializer = s.entity_serializers(self.entity).summary
        return paginator.respond(serializer(page, many=True, context={"request": request}).data)


class GoldenDetailView(KeystoneView):
    required_scope = scopes.GOLDEN_READ

    @classmethod
    def schema_for(cls, entity: str) -> Schema:
        return {
            "get": dict(
                operation_id=f"{entity}_golden_get",
                tags=["golden"],
                summary=f"One {entity} golden record: values, lineage, members and relations",
                parameters=[
                    IF_NONE_MATCH,
                    ETAG,
                    OpenApiParameter(
                        "Location",
                        str,
                        OpenApiParameter.HEADER,
                        response=[308],
                        description="The surviving record's URL.",
                    ),
                    OpenApiParameter(
                        "Cache-Control",
                        str,
                        OpenApiParameter.HEADER,
                        response=[308],
                        description="`no-cache`: a later split or merge can move the target.",
                    ),
                ],
                responses={
                    200: s.entity_serializers(entity).golden,
                    304: OpenApiResponse(description="Not modified (If-None-Match)."),
                    308: OpenApiResponse(
                        s.MergedRedirectSerializer,
                        description="Merged: `Location` names the surviving record (chains "
                        "followed, at most 50 hops; past that 404 `golden_record_not_found`).",
                    ),
                },
            )
        }

    def get(self, request: Request, golden_id: str) -> Response:
        golden, chain = _golden(self.entity, golden_id)
        if chain:
            location = s.golden_url(request, golden, self.entity)
            body = s.MergedRedirectSerializer(
                {
                    "id": golden_id,
                    "status": "merged",
                    "merged_into": golden.pk,
                    "chain": chain,
                    "location": location,
                }
            ).data
            return Response(
                body,
                status=status.HTTP_308_PERMANENT_REDIRECT,
                headers={"Location": location, "Cache-Control": "no-cache"},
            )
        golden = (
            GoldenRecord.objects.prefetch_related(
                Prefetch("members", SourceRecord.objects.select_related("source_system")),
                Prefetch("merged_from", GoldenRecord.objects.only("id", "merged_into_id")),
            )
            .filter(pk=golden.pk)
            .get()
        )
        serializer = s.entity_serializers(self.entity).golden
        return conditional_get(request, serializer(golden, context={"request": request}).data)


class GoldenHistoryView(KeystoneView):
    required_scope = scopes.GOLDEN_READ
    query_parameters = PAGE_PARAMETERS

    @classmethod
    def schema_for(cls, entity: str) -> Schema:
        return {
            "get": dict(
                operation_id=f"{entity}_golden_history",
                tags=["golden"],
                summary=f"Every recorded version of a {entity} golden record, newest first",
                parameters=[CURSOR, limit_parameter(50, 500), LINK],
                responses={200: s.entity_serializers(entity).history_page},
            )
        }

    def get(self, request: Request, golden_id: str) -> Response:
        if not GoldenRecord.objects.filter(pk=golden_id, entity_type=self.entity).exists():
            raise GoldenRecordNotFound(golden_id)
        paginator = history_pagination()
        page = paginator.page(GoldenRecord.history.filter(id=golden_id), request)
        history = s.GoldenHistorySerializer(page, many=True, context={"request": request})
        return paginator.respond(history.data)


class UnknownEntityView(KeystoneView):
    """Any entity route with an entity type that is not declared: 404 `unknown_entity`
    (for every method: it writes nothing, so no role is refused first)."""

    read_only_post = True
    required_scope = scopes.NO_SCOPE

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.query_parameters = tuple(request.GET)  # type: ignore[misc]  # every name is allowed
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(exclude=True)
    def _unknown(self, request: Request, entity: str, **kwargs: Any) -> Response:
        get_entity(entity)
        raise NotFound("No such endpoint.")

    get = post = put = patch = delete = _unknown


# --- events -----------------------------------------------------------------------------------
class EventFeedView(KeystoneView):
    required_scope = scopes.EVENTS_READ
    query_parameters = ("after", "type", *PAGE_PARAMETERS)

    @extend_schema(
        operation_id="events_list",
        tags=["events"],
        summary="The ordered, gap-free feed of changes",
        description="Events with a sequence number above `cursor` (or `after`), in order, up "
        "to the high-water mark below which no event can still appear. Read on with `cursor = "
        "next_cursor` until it is null; poll later from `next_after`. Every event's `id` is its "
        "sequence number and de-duplication key. The feed is the complete change stream; "
        "`updated_since` on golden record lists is its summary.",
        parameters=[
            OpenApiParameter(
                "cursor", str, description="`next_cursor` of the previous page (a sequence number)."
            ),
            OpenApiParameter("after", int, description="Last sequence number seen (default 0)."),
            OpenApiParameter("limit", int, description="1–1000 (default 100); else 422."),
            OpenApiParameter(
                "type",
                {"type": "array", "items": component("EventType")},
                explode=True,
                description="Only these event types (repeat the parameter for several).",
            ),
            LINK,
        ],
        responses={200: s.EventFeedSerializer},
    )
    def get(self, request: Request) -> Response:
        after = self._position(request)
        limit = int_parameter(request, "limit", default=100, low=1, high=1000)
        types = request.query_params.getlist("type")
        unknown = sorted(set(types) - set(EVENT_TYPES))
        if unknown:
            raise Invalid(fields={"type": [f"not an event type: {', '.join(unknown)}"]})
        events, mark = events_after(after, limit, event_types=types)
        last = events[-1].id if events else after
        more = len(events) == limit and last < mark
        link = None
        if more:
            query = request.query_params.copy()
            query.pop("after", None)
            query["cursor"] = str(last)
            link = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        response = Response(
            s.EventFeedSerializer(
                {
                    "results": events,
                    "next_cursor": next_cursor(link),
                    "next_after": last,
                    "high_water_mark": mark,
                },
                context={"request": request},
            ).data
        )
        if link:
            response["Link"] = f'<{link}>; rel="next"'
        return response

    @staticmethod
    def _position(request: Request) -> int:
        if "cursor" in request.query_params and "after" in request.query_params:
            raise Invalid(fields={"cursor": ["give cursor or after, not both"]})
        name = "cursor" if "cursor" in request.query_params else "after"
        return int_parameter(request, name, default=0, low=0, high=2**63 - 1)


class EventSchemasView(KeystoneView):
    required_scope = scopes.EVENTS_READ

    @extend_schema(
        operation_id="events_schemas",
        tags=["events"],
        summary="The JSON Schema of every event type, with its version",
        responses={200: s.EventSchemasSerializer},
    )
    def get(self, request: Request) -> Response:
        schemas = event_schemas()
        return Response(
            s.EventSchemasSerializer(
                {
                    "compatibility": COMPATIBILITY_RULE,
                    "results": [
                        {"type": t, "version": EVENT_VERSIONS[t], "schema": schemas[t]}
                        for t in EVENT_TYPES
                    ],
                }
            ).data
        )


# --- webhooks ---------------------------------------------------------------------------------
SUBSCRIPTION_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)


def subscription_pagination() -> KeystonePagination:
    return KeystonePagination(ordering=("id",), page_size=100, max_page_size=1000)


def delivery_pagination() -> KeystonePagination:
    return KeystonePagination(ordering=("-id",), page_size=100, max_page_size=1000)


def _subscription(request: Request, pk: int, *, lock: bool = False) -> WebhookSubscription:
    queryset = visible_subscriptions(request, WebhookSubscription.objects.select_related("owner"))
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    subscription = queryset.filter(pk=pk).first()
    if subscription is None:
        raise NotFound(f"no webhook subscription {pk}", code="subscription_not_found")
    return subscription


def _subscription_body(subscription: WebhookSubscription) -> dict[str, Any]:
    return s.WebhookSubscriptionSerializer(subscription).data


class WebhookSubscriptionsView(KeystoneView):
    """Webhook subscriptions. An integration sees and manages only its own."""

    required_scope = scopes.WEBHOOKS_MANAGE
    query_parameters = PAGE_PARAMETERS

    @extend_schema(
        operation_id="webhook_subscriptions_list",
        tags=["webhooks"],
        summary="Webhook subscriptions (an integration's own)",
        parameters=[CURSOR, limit_parameter(100, 1000), LINK],
        responses={200: s.WebhookSubscriptionPageSerializer},
    )
    def get(self, request: Request) -> Response:
        queryset = visible_subscriptions(
            request, WebhookSubscription.objects.select_related("owner")
        )
        paginator = subscription_pagination()
        page = paginator.page(queryset, request)
        return paginator.respond(s.WebhookSubscriptionSerializer(page, many=True).data)

    @extend_schema(
        operation_id="webhook_subscriptions_create",
        tags=["webhooks"],
        summary="Subscribe a URL to events",
        parameters=[
            IDEMPOTENCY_KEY,
            REPLAYED,
            OpenApiParameter(
                "Location",
                str,
                OpenApiParameter.HEADER,
                response=[201],
                description="The subscription's URL.",
            ),
        ],
        request=s.WebhookSubscriptionSerializer,
        responses={201: s.WebhookSubscriptionCreatedSerializer, **errors(409)},
    )
    def post(self, request: Request) -> Response:
        serializer = s.WebhookSubscriptionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return idempotent(request, request.data, lambda: self._create(request, serializer))

    def _create(self, request: Request, serializer: s.WebhookSubscriptionSerializer) -> Response:
        owner = request.auth.source_system if role_of(request) == INTEGRATION else None  # type: ignore[union-attr]
        subscription = create_subscription(owner=owner, **serializer.validated_data)
        body = s.WebhookSubscriptionCreatedSerializer(subscription).data
        location = request.build_absolute_uri(f"{request.path}/{subscription.pk}")
        return Response(
            body,
            status=status.HTTP_201_CREATED,
            headers={"Location": location, "ETag": etag_of(_subscription_body(subscription))},
        )


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag read last: the update is refused with 412 if it changed since.",
)


class WebhookSubscriptionView(KeystoneView):
    required_scope = scopes.WEBHOOKS_MANAGE

    @extend_schema(
        operation_id="webhook_subscription_get",
        tags=["webhooks"],
        parameters=[SUBSCRIPTION_ID, ETAG],
        responses={200: s.WebhookSubscriptionSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        body = _subscription_body(_subscription(request, pk))
        return Response(body, headers={"ETag": etag_of(body)})

    @extend_schema(
        operation_id="webhook_subscription_update",
        tags=["webhooks"],
        parameters=[SUBSCRIPTION_ID, IF_MATCH, ETAG],
        request=s.WebhookSubscriptionSerializer,
        responses={200: s.WebhookSubscriptionSerializer, **errors(412)},
    )
    def put(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(
        operation_id="webhook_subscription_partial_update",
        tags=["webhooks"],
        parameters=[SUBSCRIPTION_ID, IF_MATCH, ETAG],
        request=s.WebhookSubscriptionSerializer(partial=True),
        responses={200: s.WebhookSubscriptionSerializer, **errors(412)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: int, *, partial: bool) -> Response:
        with transaction.atomic():
            subscription = _subscription(request, pk, lock=True)
            require_current(request, _subscription_body(subscription))
            serializer = s.WebhookSubscriptionSerializer(
                subscription, data=request.data, partial=partial
            )
            serializer.is_valid(raise_exception=True)
            body = _subscription_body(serializer.save())
        return Response(body, headers={"ETag": etag_of(body)})

    @extend_schema(
        operation_id="webhook_subscription_delete",
        tags=["webhooks"],
        parameters=[SUBSCRIPTION_ID, IF_MATCH],
        responses={204: None, **errors(412)},
    )
    def delete(self, request: Request, pk: int) -> Response:
        with transaction.atomic():
            subscription = _subscription(request, pk, lock=True)
            require_current(request, _subscription_body(subscription))
            subscription.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesView(KeystoneView):
    required_scope = scopes.WEBHOOKS_MANAGE
    query_parameters = ("status", *PAGE_PARAMETERS)

    @extend_schema(
        operation_id="webhook_deliveries_list",
        tags=["webhooks"],
        summary="A subscription's deliveries, newest first",
        parameters=[
            SUBSCRIPTION_ID,
            OpenApiParameter("status", str, enum=["pending", "delivered", "failed", "dead"]),
            CURSOR,
            limit_parameter(100, 1000),
            LINK,
        ],
        responses={200: s.WebhookDeliveryPageSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        subscription = _subscription(request, pk)
        deliveries = WebhookDelivery.objects.filter(subscription=subscription).select_related(
            "event"
        )
        if wanted := request.query_params.get("status"):
            if wanted not in {"pending", "delivered", "failed", "dead"}:
                raise Invalid(fields={"status": ["one of pending, delivered, failed, dead"]})
            deliveries = deliveries.filter(status=wanted)
        paginator = delivery_pagination()
        page = paginator.page(deliveries, request)
        return paginator.respond(s.WebhookDeliverySerializer(page, many=True).data)


class WebhookReplayView(KeystoneView):
    required_scope = scopes.WEBHOOKS_MANAGE

    @extend_schema(
        operation_id="webhook_subscription_replay",
        tags=["webhooks"],
        summary="Deliver again every matching event above a sequence number",
        parameters=[SUBSCRIPTION_ID, IDEMPOTENCY_KEY, REPLAYED],
        request=s.ReplaySerializer,
        responses={200: s.ReplayResultSerializer, **errors(409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        subscription = _subscription(request, pk)
        body = s.ReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        after = body.validated_data["after"]
        return idempotent(request, request.data, lambda: self._replay(subscription, after))

    @staticmethod
    def _replay(subscription: WebhookSubscription, after: int) -> Response:
        count = replay(subscription=subscription, after=after)
        connection.on_commit(nudge_deliveries)
        return Response(s.ReplayResultSerializer({"replayed": count}).data)


# --- source mappings --------------------------------------------------------------------------
MAPPING_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Mapping version id.")


def mapping_pagination() -> KeystonePagination:
    return KeystonePagination(ordering=("id",), page_size=100, max_page_size=1000)


def _visible_mappings(request: Request) -> Any:
    queryset = SourceMapping.objects.select_related("source_system")
    if role_of(request) == INTEGRATION:
        return queryset.filter(source_system_id=request.auth.source_system_id)  # type: ignore[union-attr]
    return queryset


def _mapping(request: Request, pk: int) -> SourceMapping:
    mapping = _visible_mappings(request).filter(pk=pk).first()
    if mapping is None:
        raise NotFound(f"no source mapping {pk}", code="mapping_not_found")
    return mapping


class SourceMappingsView(KeystoneView):
    """Source mappings: every version, and a new version. An integration sees and adds only
    its own system's (with `mappings:manage`)."""

    required_scope = scopes.MAPPINGS_MANAGE
    query_parameters = ("system", "entity", "active", *PAGE_PARAMETERS)

    @extend_schema(
        operation_id="mappings_list",
        tags=["mappings"],
        summary="Source mapping versions, oldest first",
        parameters=[
            OpenApiParameter("system", str, description="Only this source system's."),
            OpenApiParameter("entity", component("Entity"), description="Only this entity's."),
            OpenApiParameter("active", bool, description="Only the active (or inactive) ones."),
            CURSOR,
            limit_parameter(100, 1000),
            LINK,
        ],
        responses={200: s.SourceMappingPageSerializer},
    )
    def get(self, request: Request) -> Response:
        queryset = _visible_mappings(request)
        if system := request.query_params.get("system"):
            queryset = queryset.filter(source_system__code=system.lower())
        if entity := request.query_params.get("entity"):
            queryset = queryset.filter(entity_type=get_entity(entity).name)
        if (active := request.query_params.get("active")) is not None:
            if active not in ("true", "false"):
                raise Invalid(fields={"active": ["true or false"]})
            queryset = queryset.filter(active=active == "true")
        paginator = mapping_pagination()
        page = paginator.page(queryset, request)
        return paginator.respond(s.SourceMappingSerializer(page, many=True).data)

    @extend_schema(
        operation_id="mappings_create",
        tags=["mappings"],
        summary="Add a new version of a source mapping",
        description="The mapping is checked first: a problem is 422 `invalid` naming each "
        "`spec.<field>` and why (unknown target attribute, bad path, bad date format, unknown "
        "transform), and nothing is stored. The new version is active unless `activate` is "
        "false; ingest applies the active version to the system's records of the entity.",
        parameters=[
            IDEMPOTENCY_KEY,
            REPLAYED,
            OpenApiParameter(
                "Location", str, OpenApiParameter.HEADER, response=[201], description="Its URL."
            ),
        ],
        request=s.NewMappingVersionSerializer,
        responses={201: s.SourceMappingSerializer, **errors(409)},
    )
    def post(self, request: Request) -> Response:
        body = s.NewMappingVersionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        system = body.validated_data["system"].strip().lower()
        if role_of(request) == INTEGRATION and system != request.auth.source_system.code:  # type: ignore[union-attr]
            raise PermissionDenied(
                f"This token manages only {request.auth.source_system.code!r} mappings."  # type: ignore[union-attr]
            )
        return idempotent(request, request.data, lambda: self._create(request, body, system))

    @staticmethod
    def _create(request: Request, body: Any, system: str) -> Response:
        data = body.validated_data
        mapping = save_mapping_version(
            system_code=system,
            entity_type=data["entity"],
            spec=data["spec"],
            actor=actor_for(request),
            note=data["note"],
            activate=data["activate"],
        )
        return Response(
            s.SourceMappingSerializer(mapping).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(f"{request.path}/{mapping.pk}")},
        )


class SourceMappingView(KeystoneView):
    required_scope = scopes.MAPPINGS_MANAGE

    @extend_schema(
        operation_id="mapping_get",
        tags=["mappings"],
        summary="One source mapping version",
        parameters=[MAPPING_ID],
        responses={200: s.SourceMappingSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.SourceMappingSerializer(_mapping(request, pk)).data)


class MappingPreviewView(KeystoneView):
    """What ingest would make of sample payloads under a mapping; nothing is written."""

    required_scope = scopes.MAPPINGS_MANAGE
    read_only_post = True

    @extend_schema(
        operation_id="mappings_preview",
        tags=["mappings"],
        summary="Try a mapping on sample payloads",
        description="Give `entity` and a `spec` (not stored), or the id of a stored `mapping`, "
        "and 1-100 `samples`. Each comes back with the payload (before), the mapped record "
        "and its normalized attributes (after), or the rejection ingest would make: `code` "
        "(`unmappable`: `target` and `path` say where the mapping failed) and `reason`. "
        "Nothing is written.",
        request=s.MappingSamplesSerializer,
        responses={200: s.MappingPreviewSerializer},
    )
    def post(self, request: Request) -> Response:
        body = s.MappingSamplesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "mapping" in data:
            stored = _mapping(request, data["mapping"])
            compiled = compile_mapping(
                stored.spec, entity_type=stored.entity_type, version=stored.version
            )
            system = stored.source_system.code
        elif "spec" in data and "entity" in data:
            system = data["system"].strip().lower()
            compiled = compile_mapping(
                data["spec"], entity_type=data["entity"], system=system or None
            )
        else:
            raise Invalid(
                "Give `entity` and `spec`, or a stored `mapping`.",
                fields={"spec": ["with entity, or give mapping"]},
            )
        results = preview_mapping(mapping=compiled, payloads=data["samples"], system_code=system)
        return Response(
            s.MappingPreviewSerializer(
                {"entity": compiled.entity_type, "version": compiled.version, "results": results}
            ).data
        )


PER_ENTITY: tuple[type[KeystoneView], ...] = (
    SourceRecordView,
    SourceBatchView,
    MatchProbeView,
    GoldenListView,
    GoldenDetailView,
    GoldenHistoryView,
)


def for_entity(view: type[KeystoneView], entity: str) -> Callable[..., Any]:
    """`view` routed for one entity type, documented with that entity's shapes."""
    typed = type(f"{entity.capitalize()}{view.__name__}", (view,), {"entity": entity})
    for method, arguments in view.schema_for(entity).items():
        handler = getattr(view, method)

        def bound(self: KeystoneView, *args: Any, _handler: Callable = handler, **kw: Any) -> Any:
            return _handler(self, *args, **kw)

        setattr(typed, method, extend_schema(**arguments)(bound))
    return typed.as_view()  # type: ignore[attr-defined]
