"""One serializer per representation: the same class renders the response and documents it.

Shapes that depend on the entity type (golden record values, lineage and relations) are
generated per entity from `mdm.entities` through the published definitions in
`mdm.contracts`; `entity_serializers(name)` holds them. Request bodies that ingest validates
itself (source records, batches) are documented by those definitions directly (`schemas`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from api.errors import ERROR_CODES
from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.scopes import reads_sensitive, visible_event_payload, withhold_sensitive
from mdm.contracts import EVENT_TYPES, values_name
from mdm.entities import ENTITIES, EntityType
from mdm.models import GoldenRecord, LinkMethod, OutboxEvent, SourceMapping, SourceRecord
from mdm.services.ingest import OUTCOMES, REJECTION_CODES


def component(name: str) -> dict[str, str]:
    """A reference to a published definition (added to the schema by `api.schema`)."""
    return {"$ref": f"#/components/schemas/{name}"}


def documented_as(schema: dict[str, Any], base: type[Any] = serializers.JSONField) -> Any:
    """A field class that renders like `base` and is documented as `schema`."""
    return extend_schema_field(schema)(type(f"Documented{base.__name__}", (base,), {}))


EntityField = documented_as(component("Entity"), serializers.CharField)
GoldenStatusField = documented_as(component("GoldenStatus"), serializers.CharField)
EventTypeField = documented_as(component("EventType"), serializers.CharField)
XrefKeysField = documented_as({"type": "array", "items": component("XrefKey")})


# --- errors -----------------------------------------------------------------------------------
class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=list(ERROR_CODES), help_text="See the error codes.")
    message = serializers.CharField()
    fields = serializers.DictField(  # type: ignore[assignment]  # the error's `fields` key
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per field (or header / parameter): what is wrong with it.",
    )
    correlation_id = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --- ingest -----------------------------------------------------------------------------------
class FlaggedValueSerializer(serializers.Serializer):
    attribute = serializers.CharField()
    reason = serializers.CharField()


class IngestResultSerializer(serializers.Serializer):
    system = serializers.CharField()
    entity = EntityField()
    source_key = serializers.CharField()
    outcome = serializers.ChoiceField(choices=list(OUTCOMES))
    golden_id = serializers.CharField(allow_null=True)
    flagged = FlaggedValueSerializer(many=True)


class BatchRecordResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request, from 0.")
    line = serializers.IntegerField(help_text="Line of an NDJSON body (index + 1 for JSON).")
    source_key = serializers.CharField(allow_blank=True)
    outcome = serializers.ChoiceField(choices=list(OUTCOMES))
    golden_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_blank=True, help_text="Why it was rejected.")
    reason_code = serializers.ChoiceField(
        choices=list(REJECTION_CODES),
        allow_null=True,
        help_text="Why it was rejected, as a code; null unless rejected.",
    )
    flagged = FlaggedValueSerializer(many=True)


class BatchCountsSerializer(serializers.Serializer):
    loaded = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    stale = serializers.IntegerField()
    deleted = serializers.IntegerField()
    rejected = serializers.IntegerField()


class BatchResultSerializer(serializers.Serializer):
    system = serializers.CharField()
    entity = EntityField()
    counts = BatchCountsSerializer()
    results = BatchRecordResultSerializer(many=True)


# --- cross-reference --------------------------------------------------------------------------
class XrefLookupSerializer(serializers.Serializer):
    """Documents the lookup body; the view validates it by hand (a serializer costs more than
    the lookup itself for 1,000 keys)."""

    keys = XrefKeysField(help_text="At most 1,000 keys.")


class XrefResultSerializer(serializers.Serializer):
    """Documents a lookup answer; `api.selectors` builds it as a dict on the hot path."""

    system = serializers.CharField()
    source_key = serializers.CharField()
    found = serializers.BooleanField()
    golden_id = serializers.CharField(required=False)
    status = GoldenStatusField(required=False)
    deleted = serializers.BooleanField(
        required=False, help_text="The source record is a tombstone."
    )
    keys = XrefKeysField(required=False)


class XrefLookupResultSerializer(serializers.Serializer):
    results = XrefResultSerializer(many=True)


# --- match probe ------------------------------------------------------------------------------
class ComparisonSerializer(serializers.Serializer):
    level = serializers.CharField(
        help_text="How the values compared, in the words the match spec declares for the level "
        '("same tax ID", "names nearly identical", "no value on one side").'
    )
    gamma = serializers.IntegerField(
        help_text="The comparison level's number: higher is closer agreement; -1 no value on "
        "one side."
    )
    tone = serializers.ChoiceField(
        choices=["same", "close", "differ", "none"],
        help_text="How the level reads: same (the comparison's first level), close (a lower "
        "level that still counts for a match), differ (one that counts against), none (no "
        "value on one side).",
    )
    left = serializers.CharField(allow_null=True)
    right = serializers.CharField(allow_null=True)
    match_weight = serializers.FloatField()


class MatchCandidateSerializer(serializers.Serializer):
    golden_id = serializers.CharField()
    probability = serializers.FloatField()
    match_weight = serializers.FloatField()
    source_system = serializers.CharField(help_text="System of the best-matching member.")
    source_key = serializers.CharField()
    explanation = serializers.DictField(
        child=ComparisonSerializer(), help_text="Per comparison: how it compared."
    )
    url = serializers.CharField()


class MatchProbeResultSerializer(serializers.Serializer):
    candidates = MatchCandidateSerializer(many=True)


# --- golden records ---------------------------------------------------------------------------
class MemberSerializer(serializers.ModelSerializer):
    system = serializers.CharField(source="source_system.code")
    link_method = serializers.ChoiceField(choices=LinkMethod.choices)

    class Meta:
        model = SourceRecord
        fields = [
            "system",
            "source_key",
            "deleted",
            "link_method",
            "link_probability",
            "linked_at",
            "source_updated_at",
            "updated_at",
        ]


def golden_url(request: Request | None, golden: GoldenRecord | str, entity: str) -> str:
    golden_id = golden if isinstance(golden, str) else golden.pk
    path = reverse(f"api:{entity}-golden-detail", kwargs={"golden_id": golden_id})
    return request.build_absolute_uri(path) if request is not None else path


class GoldenSummarySerializer(serializers.ModelSerializer):
    entity = EntityField(source="entity_type")
    status = GoldenStatusField()
    values = serializers.JSONField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = GoldenRecord
        fields = ["id", "entity", "status", "display_name", "values", "created_at", "updated_at"]
        fields += ["url"]

    def get_url(self, golden: GoldenRecord) -> str:
        return golden_url(self.context.get("request"), golden, golden.entity_type)

    def to_representation(self, golden: GoldenRecord) -> dict[str, Any]:
        """Values (and lineage) without sensitive attributes for readers without the scope."""
        data = super().to_representation(golden)
        if not reads_sensitive(self.context.get("request")):
            data["values"] = withhold_sensitive(golden.entity_type, golden.values)
            if "lineage" in data:
                data["lineage"] = withhold_sensitive(
                    golden.entity_type, data["lineage"], values=golden.values
                )
        return data


class GoldenDetailSerializer(GoldenSummarySerializer):
    lineage = serializers.JSONField()
    members = serializers.SerializerMethodField()
    relations = serializers.SerializerMethodField()
    merged_from = serializers.SerializerMethodField()

    class Meta(GoldenSummarySerializer.Meta):
        fields = GoldenSummarySerializer.Meta.fields + [
            "lineage",
            "members",
            "relations",
            "merged_from",
        ]

    @extend_schema_field(MemberSerializer(many=True))
    def get_members(self, golden: GoldenRecord) -> Any:
        members = sorted(golden.members.all(), key=lambda m: (m.source_system.code, m.source_key))
        return MemberSerializer(members, many=True).data

    def get_relations(self, golden: GoldenRecord) -> dict[str, str | None]:
        entity = ENTITIES[golden.entity_type]
        return {ref.relation: getattr(golden, f"{ref.relation}_id") for ref in entity.references}

    def get_merged_from(self, golden: GoldenRecord) -> list[str]:
        return sorted(m.pk for m in golden.merged_from.all())


class MergedRedirectSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = GoldenStatusField()
    merged_into = serializers.CharField(help_text="The surviving golden record, after all merges.")
    chain = serializers.ListField(
        child=serializers.CharField(), help_text="The merged IDs followed, from the one asked."
    )
    location = serializers.CharField()


class GoldenHistorySerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    history_type = serializers.ChoiceField(
        choices=["+", "~", "-"], help_text="+ created, ~ changed, - deleted"
    )
    reason = serializers.CharField(source="history_change_reason", allow_null=True)
    actor = serializers.CharField()
    correlation_id = serializers.CharField()
    status = GoldenStatusField()
    merged_into = serializers.CharField(source="merged_into_id", allow_null=True)
    display_name = serializers.CharField()
    values = serializers.JSONField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, version: Any) -> dict[str, Any]:
        data = super().to_representation(version)
        if not reads_sensitive(self.context.get("request")):
            data["values"] = withhold_sensitive(version.entity_type, version.values or {})
        return data


def page_of(serializer_class: type[serializers.Serializer], name: str) -> type:
    """The shape of one page of a list (see `api.pagination`)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "results": serializer_class(many=True),
            "next_cursor": serializers.CharField(
                allow_null=True, help_text="Pass as `cursor` for the next page; null on the last."
            ),
        },
    )


@dataclass(frozen=True)
class EntitySerializers:
    """The representations whose shape depends on the entity type."""

    golden: type[GoldenDetailSerializer]
    summary: type[GoldenSummarySerializer]
    page: type[serializers.Serializer]
    history_page: type[serializers.Serializer]


@cache
def entity_serializers(name: str) -> EntitySerializers:
    entity: EntityType = ENTITIES[name]
    prefix = values_name(entity).removesuffix("Values")
    values = documented_as(component(values_name(entity)))
    summary = type(
        f"{prefix}GoldenSummarySerializer", (GoldenSummarySerializer,), {"values": values()}
    )

    def get_relations(self: GoldenDetailSerializer, golden: GoldenRecord) -> dict[str, str | None]:
        return GoldenDetailSerializer.get_relations(self, golden)

    golden = type(
        f"{prefix}GoldenSerializer",
        (GoldenDetailSerializer,),
        {
            "values": values(),
            "lineage": documented_as(component(f"{prefix}Lineage"))(),
            "get_relations": extend_schema_field(component(f"{prefix}Relations"))(get_relations),
            "Meta": type("Meta", (GoldenDetailSerializer.Meta,), {}),
        },
    )
    history = type(
        f"{prefix}GoldenVersionSerializer", (GoldenHistorySerializer,), {"values": values()}
    )
    return EntitySerializers(
        golden=golden,
        summary=summary,
        page=page_of(summary, f"{prefix}GoldenPageSerializer"),
        history_page=page_of(history, f"{prefix}GoldenHistoryPageSerializer"),
    )


# --- events -----------------------------------------------------------------------------------
class EventSerializer(serializers.ModelSerializer):
    """An event as the feed and webhooks send it (documented by its published schema).
    Events stored before their schemas were versioned are served as version 1."""

    type = serializers.CharField(source="event_type")
    entity = serializers.CharField(source="entity_type")
    payload = serializers.SerializerMethodField()

    def get_payload(self, event: OutboxEvent) -> dict[str, Any]:
        """Without sensitive attributes for a reader without the scope: the request's, or
        `sensitive` in the context (webhooks: the subscription's)."""
        payload = event.payload
        if "schema_version" not in payload:
            payload = {**payload, "schema_version": 1}
        sensitive = self.context.get("sensitive")
        if sensitive is None:
            sensitive = reads_sensitive(self.context.get("request"))
        return dict(visible_event_payload(event.entity_type, payload, sensitive=sensitive))

    class Meta:
        model = OutboxEvent
        fields = ["id", "type", "entity", "golden_id", "payload", "actor", "correlation_id"]
        fields += ["created_at"]


class EventFeedSerializer(serializers.Serializer):
    results = documented_as({"type": "array", "items": component("Event")}, serializers.ListField)(
        child=EventSerializer()
    )
    next_cursor = serializers.CharField(
        allow_null=True,
        help_text="Pass as `cursor` to read on; null when this page reached the high-water mark.",
    )
    next_after = serializers.IntegerField(
        help_text="The last sequence number served (or `after`): where to poll from next."
    )
    high_water_mark = serializers.IntegerField(
        help_text="No event at or below this sequence number can still appear."
    )


class EventSchemaSerializer(serializers.Serializer):
    type = EventTypeField()
    version = serializers.IntegerField()
    schema = serializers.DictField(help_text="The event type's JSON Schema (2020-12).")


class EventSchemasSerializer(serializers.Serializer):
    compatibility = serializers.CharField(help_text="What may change within one version.")
    results = EventSchemaSerializer(many=True)


# --- webhooks ---------------------------------------------------------------------------------
class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=documented_as(component("EventType"), serializers.ChoiceField)(
            choices=list(EVENT_TYPES)
        ),
        required=False,
        help_text="Event types to send; empty or omitted means all.",
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        min_length=16,
        max_length=128,
        help_text="HMAC key; generated when omitted and then returned once, on creation.",
    )
    owner = serializers.CharField(source="owner.code", read_only=True, allow_null=True)
    from_event = serializers.IntegerField(
        write_only=True,
        required=False,
        min_value=1,
        help_text="On creation: the first event sequence number to send (1: every event kept). "
        "Without it the subscription starts from now.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "name", "url", "event_types", "secret", "active", "owner", "from_event"]
        fields += ["last_event_id", "created_at", "updated_at"]
        read_only_fields = ["last_event_id", "created_at", "updated_at"]


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    signing_secret = serializers.CharField(source="secret", read_only=True)

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = WebhookSubscriptionSerializer.Meta.fields + ["signing_secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_type = documented_as(component("EventType"), serializers.CharField)(
        source="event.event_type"
    )
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "status", "attempts", "next_attempt_at"]
        fields += ["last_attempt_at", "delivered_at", "response_code", "last_error"]


class ReplaySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, help_text="Replay every matching event with a sequence number above this."
    )


class ReplayResultSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()


WebhookSubscriptionPageSerializer = page_of(
    WebhookSubscriptionSerializer, "WebhookSubscriptionPageSerializer"
)
WebhookDeliveryPageSerializer = page_of(WebhookDeliverySerializer, "WebhookDeliveryPageSerializer")


# --- source mappings --------------------------------------------------------------------------
MappingSpecField = documented_as(component("MappingSpec"))
MappedRecordField = documented_as(component("MappedRecord"))
PayloadField = documented_as(
    {"type": "object", "description": "A source system's native payload, as sent."}
)


class SourceMappingSerializer(serializers.ModelSerializer):
    system = serializers.CharField(source="source_system.code")
    entity = EntityField(source="entity_type")
    spec = MappingSpecField()

    class Meta:
        model = SourceMapping
        fields = ["id", "system", "entity", "version", "active", "spec", "note", "created_by"]
        fields += ["created_at"]


class NewMappingVersionSerializer(serializers.Serializer):
    """A new version: checked by the mapping language (422 naming `spec.<field>`)."""

    system = serializers.CharField(max_length=32)
    entity = EntityField()
    spec = MappingSpecField()
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    activate = serializers.BooleanField(
        required=False, default=True, help_text="Make it the version ingest applies (default)."
    )


class MappingSamplesSerializer(serializers.Serializer):
    entity = EntityField(required=False, help_text="With `spec`: the entity it maps.")
    system = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    spec = MappingSpecField(required=False, help_text="A mapping to try (not stored).")
    mapping = serializers.IntegerField(
        required=False, help_text="Or the id of a stored version to try instead of `spec`."
    )
    samples = serializers.ListField(
        child=PayloadField(), min_length=1, max_length=100, help_text="1-100 native payloads."
    )


class MappingRejectionSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=list(REJECTION_CODES))
    target = serializers.CharField(help_text="The target attribute, when the mapping failed.")
    path = serializers.CharField(help_text="The source path it read, when the mapping failed.")
    reason = serializers.CharField()


class MappingPreviewRowSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    payload = PayloadField(help_text="Before: the sample as sent.")
    mapped = MappedRecordField(allow_null=True, help_text="After: what the mapping made of it.")
    attributes = MappedRecordField(
        allow_null=True, help_text="The mapped record's attributes once normalized."
    )
    references = MappedRecordField(allow_null=True)
    flagged = FlaggedValueSerializer(many=True, help_text="Values normalization would flag.")
    rejection = MappingRejectionSerializer(allow_null=True)


class MappingPreviewSerializer(serializers.Serializer):
    entity = EntityField()
    version = serializers.IntegerField(allow_null=True)
    results = MappingPreviewRowSerializer(many=True)


SourceMappingPageSerializer = page_of(SourceMappingSerializer, "SourceMappingPageSerializer")
