"""One serializer per representation. Read-only ones also document the responses."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from api.models import WebhookDelivery, WebhookSubscription
from mdm.entities import ENTITIES
from mdm.models import GoldenRecord, OutboxEvent, SourceRecord

EVENT_TYPES = ("golden.created", "golden.updated", "golden.merged", "golden.split", "xref.changed")


# --- errors -----------------------------------------------------------------------------------
class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    correlation_id = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --- ingest -----------------------------------------------------------------------------------
class SourceRecordBodySerializer(serializers.Serializer):
    """Documentation only: the attributes and reference keys of the entity, any extra fields
    (kept on the record as `extra`), and an optional `source_updated_at`."""

    source_updated_at = serializers.DateTimeField(required=False, allow_null=True)

    class Meta:
        ref_name = "SourceRecordBody"


class FlaggedValueSerializer(serializers.Serializer):
    attribute = serializers.CharField()
    reason = serializers.CharField()


class IngestOutcomeSerializer(serializers.Serializer):
    system = serializers.CharField()
    entity = serializers.CharField()
    source_key = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=["loaded", "updated", "unchanged", "stale", "deleted", "rejected"]
    )
    golden_id = serializers.CharField(allow_null=True)
    flagged = FlaggedValueSerializer(many=True)


class BatchRecordResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request, from 0.")
    line = serializers.IntegerField(help_text="Line of an NDJSON body (index + 1 for JSON).")
    source_key = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField()
    golden_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    flagged = FlaggedValueSerializer(many=True)


class BatchResultSerializer(serializers.Serializer):
    system = serializers.CharField()
    entity = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())
    results = BatchRecordResultSerializer(many=True)


# --- cross-reference --------------------------------------------------------------------------
class XrefKeySerializer(serializers.Serializer):
    system = serializers.CharField(max_length=32)
    source_key = serializers.CharField(max_length=255)


class XrefLookupRequestSerializer(serializers.Serializer):
    keys = XrefKeySerializer(many=True, help_text="At most 1,000 keys.")


class XrefResultSerializer(serializers.Serializer):
    system = serializers.CharField()
    source_key = serializers.CharField()
    found = serializers.BooleanField()
    golden_id = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    deleted = serializers.BooleanField(
        required=False, help_text="The source record is a tombstone."
    )
    keys = XrefKeySerializer(many=True, required=False)


class XrefLookupResponseSerializer(serializers.Serializer):
    results = XrefResultSerializer(many=True)


# --- match probe ------------------------------------------------------------------------------
class MatchProbeRequestSerializer(serializers.Serializer):
    attributes = serializers.DictField(
        help_text="Canonical attribute names of the entity with raw values, as for ingest."
    )
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)


class MatchCandidateSerializer(serializers.Serializer):
    golden_id = serializers.CharField()
    probability = serializers.FloatField()
    match_weight = serializers.FloatField()
    source_system = serializers.CharField(help_text="System of the best-matching member.")
    source_key = serializers.CharField()
    explanation = serializers.DictField(help_text="Per attribute: how it compared.")
    url = serializers.CharField()


class MatchProbeResponseSerializer(serializers.Serializer):
    candidates = MatchCandidateSerializer(many=True)


# --- golden records ---------------------------------------------------------------------------
class MemberSerializer(serializers.ModelSerializer):
    system = serializers.CharField(source="source_system.code")
    link_method = serializers.CharField()

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


def golden_url(request, golden: GoldenRecord | str, entity: str) -> str:
    golden_id = golden if isinstance(golden, str) else golden.pk
    path = reverse("api:golden-detail", kwargs={"entity": entity, "golden_id": golden_id})
    return request.build_absolute_uri(path) if request is not None else path


class GoldenSummarySerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity_type")
    url = serializers.SerializerMethodField()

    class Meta:
        model = GoldenRecord
        fields = ["id", "entity", "status", "display_name", "values", "created_at", "updated_at"]
        fields += ["url"]

    def get_url(self, golden) -> str:
        return golden_url(self.context.get("request"), golden, golden.entity_type)


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

    def get_members(self, golden) -> list[dict]:
        members = sorted(golden.members.all(), key=lambda m: (m.source_system.code, m.source_key))
        return MemberSerializer(members, many=True).data

    def get_relations(self, golden) -> dict[str, str | None]:
        entity = ENTITIES[golden.entity_type]
        return {ref.relation: getattr(golden, f"{ref.relation}_id") for ref in entity.references}

    def get_merged_from(self, golden) -> list[str]:
        return sorted(m.pk for m in golden.merged_from.all())


class MergedRedirectSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    merged_into = serializers.CharField(help_text="The surviving golden record, after all merges.")
    chain = serializers.ListField(child=serializers.CharField())
    location = serializers.CharField()


class GoldenHistorySerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    history_type = serializers.CharField(help_text="+ created, ~ changed, - deleted")
    reason = serializers.CharField(source="history_change_reason", allow_null=True)
    actor = serializers.CharField()
    correlation_id = serializers.CharField()
    status = serializers.CharField()
    merged_into = serializers.CharField(source="merged_into_id", allow_null=True)
    display_name = serializers.CharField()
    values = serializers.JSONField()


# --- events -----------------------------------------------------------------------------------
class EventSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="event_type")
    entity = serializers.CharField(source="entity_type")

    class Meta:
        model = OutboxEvent
        fields = ["id", "type", "entity", "golden_id", "payload", "actor", "correlation_id"]
        fields += ["created_at"]


class EventFeedSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next_after = serializers.IntegerField(help_text="Pass as `after` to read on.")
    high_water_mark = serializers.IntegerField()


# --- webhooks ---------------------------------------------------------------------------------
class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False
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
    event_type = serializers.CharField(source="event.event_type")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "status", "attempts", "next_attempt_at"]
        fields += ["last_attempt_at", "delivered_at", "response_code", "last_error"]


class ReplayRequestSerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, help_text="Replay every matching event with a sequence number above this."
    )


class ReplayResponseSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    checks = serializers.DictField(child=serializers.CharField(), required=False)


def page_of(serializer_class, name: str):
    """The shape of a cursor-paginated list, for the schema."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


GoldenPageSerializer = page_of(GoldenSummarySerializer, "GoldenPageSerializer")
GoldenHistoryPageSerializer = page_of(GoldenHistorySerializer, "GoldenHistoryPageSerializer")
WebhookDeliveryPageSerializer = page_of(WebhookDeliverySerializer, "WebhookDeliveryPageSerializer")
