"""Keystone's core records: source systems, source records (the xref), golden records,
survivorship rules, steward pins, ingest rejections and the outbox of events.

Models hold data and invariants; every change to a golden record goes through the services
in `mdm.services`. History (django-simple-history) records who, when, why and the
correlation ID on every model that an auditor needs to replay.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from mdm.entities import ENTITIES, ENTITY_CHOICES, RELATIONS, STRATEGY_LABELS, get_entity


class AuditedHistory(models.Model):
    """Extra columns on every history row: who acted (also when not a Django user) and the
    correlation ID of the request, command or task that made the change."""

    actor = models.CharField(max_length=150, blank=True, default="")
    correlation_id = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta:
        abstract = True


def audited_history(**kwargs) -> HistoricalRecords:
    return HistoricalRecords(bases=[AuditedHistory], **kwargs)


class SourceSystem(models.Model):
    """A connected platform (CRM, ERP, billing, …). Lower trust_rank is more trusted."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100, blank=True)
    trust_rank = models.PositiveIntegerField(
        default=100, help_text="Survivorship tie-break and default source priority: lower wins."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["trust_rank", "code"]

    def __str__(self) -> str:
        return self.code


class GoldenStatus(models.TextChoices):
    ACTIVE = "active"
    MERGED = "merged"
    RETIRED = "retired"


_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def new_golden_id(entity_type: str) -> str:
    """An opaque, unguessable ID with the entity's prefix (50 random bits).

    Golden records are never deleted, so the primary key guarantees an ID is never reused.
    """
    bits = secrets.randbits(50)
    body = "".join(_ID_ALPHABET[(bits >> shift) & 31] for shift in range(45, -1, -5))
    return f"{get_entity(entity_type).prefix}-{body}"


class GoldenRecord(models.Model):
    """One governed record per real-world thing.

    All four entity types share this table (typed proxies below give each its own manager and
    admin), so relations between them are plain foreign keys and bulk loads stay bulk.
    `values` holds the survived canonical attributes, `lineage` for each field the rule, the
    winning source record and the runner-up values it beat.
    """

    id = models.CharField(primary_key=True, max_length=20, editable=False)
    # entity_type, status and display_name are indexed together (Meta.indexes), not one by one.
    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    status = models.CharField(
        max_length=10, choices=GoldenStatus.choices, default=GoldenStatus.ACTIVE
    )
    # The five links to other golden records are empty on most rows: each is indexed only
    # where it is set (Meta.indexes), so inserting a record adds no index entry for them.
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_from",
        db_index=False,
    )
    display_name = models.CharField(max_length=255, blank=True)
    values = models.JSONField(default=dict, blank=True)
    lineage = models.JSONField(default=dict, blank=True)
    # Some field's lineage shows a runner-up value (the sources disagree and a rule, not
    # agreement, decided): set with the lineage by survivorship, read by the stewardship views.
    has_conflicts = models.BooleanField(default=False, db_default=False, editable=False)
    # Relations, resolved from the survived reference keys through the cross-reference.
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        db_index=False,
    )
    customer = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customer_of",
        db_index=False,
    )
    contract = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="contract_of",
        db_index=False,
    )
    product = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="product_of",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    # History is read by golden id and by date; every other index there only slows writes.
    history = audited_history(
        cascade_delete_history=False,
        no_db_index=[
            "entity_type",
            "status",
            "merged_into",
            "display_name",
            "parent",
            "customer",
            "contract",
            "product",
            "created_at",
            "updated_at",
        ],
    )

    # The relation foreign keys above, as mdm.entities declares them (checked at import).
    RELATION_FIELDS = RELATIONS

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["entity_type", "status", "display_name"]),
            models.Index(
                fields=["entity_type", "-updated_at", "id"],
                condition=Q(status="active", has_conflicts=True),
                name="golden_open_conflicts",
            ),
            *(
                models.Index(
                    fields=[relation],
                    condition=Q(**{f"{relation}__isnull": False}),
                    name=f"golden_{relation}_set",
                )
                for relation in ("merged_into", *RELATIONS)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.display_name}".strip()

    def save(self, *args, **kwargs):
        if not self.id:
            self.id = new_golden_id(self.entity_type)
        super().save(*args, **kwargs)

    @property
    def entity(self):
        return get_entity(self.entity_type)


_Golden = TypeVar("_Golden", bound=GoldenRecord)

for _relation in RELATIONS:  # every declared relation has its foreign key
    assert GoldenRecord._meta.get_field(_relation).many_to_one, _relation


class _TypedGoldenManager(models.Manager[_Golden]):
    entity_type = ""

    def get_queryset(self):
        return super().get_queryset().filter(entity_type=self.entity_type)


def _typed_manager(entity_type: str) -> _TypedGoldenManager[Any]:
    return type(
        f"{entity_type.title()}Manager", (_TypedGoldenManager,), {"entity_type": entity_type}
    )()


class Customer(GoldenRecord):
    objects: ClassVar[_TypedGoldenManager[Customer]] = _typed_manager("customer")

    class Meta:
        proxy = True


class Product(GoldenRecord):
    objects: ClassVar[_TypedGoldenManager[Product]] = _typed_manager("product")

    class Meta:
        proxy = True


class Contract(GoldenRecord):
    objects: ClassVar[_TypedGoldenManager[Contract]] = _typed_manager("contract")

    class Meta:
        proxy = True


class Entitlement(GoldenRecord):
    objects: ClassVar[_TypedGoldenManager[Entitlement]] = _typed_manager("entitlement")

    class Meta:
        proxy = True


GOLDEN_PROXIES = {
    "customer": Customer,
    "product": Product,
    "contract": Contract,
    "entitlement": Entitlement,
}
for _proxy in GOLDEN_PROXIES.values():
    # Proxies share GoldenRecord's history table; tell simple-history's admin where it is.
    _proxy._meta.simple_history_manager_attribute = "history"  # type: ignore[attr-defined]


class LinkMethod(models.TextChoices):
    NEW = "new", "new golden record"
    AUTO = "auto", "automatic match"
    STEWARD = "steward", "steward decision"
    RULE = "rule", "rule"


class SourceRecord(models.Model):
    """A record exactly as a source system sent it, plus its normalized form.

    The link to a golden record *is* the cross-reference. A source deletion is a tombstone
    (`deleted`), never a row delete.
    """

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    source_system = models.ForeignKey(
        SourceSystem, on_delete=models.PROTECT, related_name="records"
    )
    source_key = models.CharField(max_length=255)
    raw = models.JSONField(default=dict, help_text="The payload as sent.")
    attributes = models.JSONField(default=dict, blank=True, help_text="Canonical values.")
    match_keys = models.JSONField(default=dict, blank=True)
    invalid = models.JSONField(
        default=dict, blank=True, help_text="Values that failed normalization: raw and reason."
    )
    extra = models.JSONField(default=dict, blank=True, help_text="Fields outside the declaration.")
    references = models.JSONField(default=dict, blank=True)
    payload_hash = models.CharField(max_length=64)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    golden = models.ForeignKey(  # indexed by (golden, deleted) in Meta.indexes
        GoldenRecord,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
        db_index=False,
    )
    link_method = models.CharField(max_length=10, choices=LinkMethod.choices, blank=True)
    link_probability = models.FloatField(null=True, blank=True)
    linked_at = models.DateTimeField(null=True, blank=True)

    # History is read by record id, by golden id and by date.
    history = audited_history(cascade_delete_history=False, no_db_index=["source_system"])

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity_type", "source_system", "source_key"], name="uniq_source_record"
            )
        ]
        indexes = [models.Index(fields=["golden", "deleted"])]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.source_system.code}:{self.source_key}"

    @property
    def observed_at(self):
        return self.source_updated_at or self.updated_at or self.received_at


class SourceReference(models.Model):
    """An index of the references a source record makes (customer_key → the customer with
    that key in the same system), so a newly arrived record finds the records pointing at it."""

    referrer = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="outgoing")
    column = models.CharField(max_length=40)
    target_entity = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    source_system = models.ForeignKey(SourceSystem, on_delete=models.PROTECT)
    target_key = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["target_entity", "source_system", "target_key"])]
        constraints = [
            models.UniqueConstraint(fields=["referrer", "column"], name="uniq_reference_column")
        ]

    def __str__(self) -> str:
        return f"{self.column} → {self.target_entity} {self.target_key}"


def _strategy_choices():
    return list(STRATEGY_LABELS.items())


class SurvivorshipRule(models.Model):
    """A steward's rule for one attribute; without a row the declaration's default applies."""

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    attribute = models.CharField(max_length=40)
    strategy = models.CharField(max_length=20, choices=_strategy_choices())
    system_order = models.JSONField(
        default=list, blank=True, help_text="Source system codes, most trusted first."
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity_type", "attribute"], name="uniq_rule_attribute")
        ]
        ordering = ["entity_type", "attribute"]

    def __str__(self) -> str:
        return f"{self.entity_type}.{self.attribute}: {self.strategy}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        entity = ENTITIES.get(self.entity_type)
        if entity and self.attribute not in entity.survived_fields:
            raise ValidationError(
                {"attribute": f"{self.entity_type} has no field {self.attribute!r}"}
            )
        if not isinstance(self.system_order, list) or not all(
            isinstance(code, str) for code in self.system_order
        ):
            raise ValidationError({"system_order": "a list of source system codes"})


class StewardOverride(models.Model):
    """A steward's pinned value for one field of one golden record; beats every rule."""

    golden = models.ForeignKey(GoldenRecord, on_delete=models.CASCADE, related_name="pins")
    attribute = models.CharField(max_length=40)
    value = models.JSONField()
    reason = models.TextField()
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history(cascade_delete_history=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["golden", "attribute"], name="uniq_pin_attribute")
        ]

    def __str__(self) -> str:
        return f"{self.golden_id}.{self.attribute} = {self.value!r}"


class RejectionStatus(models.TextChoices):
    OPEN = "open"
    REPLAYED = "replayed"
    DISMISSED = "dismissed"


class IngestRejection(models.Model):
    """A record that could not be loaded, kept with its reason so an operator can fix and
    replay it. Nothing sent is ever silently dropped."""

    entity_type = models.CharField(max_length=64, blank=True)
    source_system = models.CharField(max_length=64, blank=True)
    source_key = models.CharField(max_length=255, blank=True)
    origin = models.CharField(max_length=255, blank=True, help_text="File name or API route.")
    line_number = models.PositiveIntegerField(null=True, blank=True)
    reason = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=RejectionStatus.choices, default=RejectionStatus.OPEN, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line_number}" if self.line_number else self.origin
        return f"{where} {self.reason}"


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change it describes; the feed and
    webhooks read it in sequence (`id`) order. Written only by `mdm.services.events`
    (`emit_many`), which keeps the ids gap-free for readers (`mdm.db.watermark`)."""

    event_type = models.CharField(max_length=40, db_index=True)
    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    golden_id = models.CharField(max_length=20, db_index=True)
    payload = models.JSONField(default=dict)
    actor = models.CharField(max_length=150, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.event_type} {self.golden_id}"


class MatchRequest(models.Model):
    """A request to match changed source records, written in the transaction that changed
    them (the transactional outbox of matching): a broker that is down when the change
    commits delays matching, it never skips it. Drained by `matching` (a task per request,
    and a periodic sweep for those no task picked up); a request is deleted once its records
    are matched, so what is here is what waits.

    `available_at` is when it may next be claimed: a worker claims it by moving it forward by
    a lease (conditional UPDATE), so a worker that dies mid-match leaves it to be claimed again
    when the lease runs out; a failed attempt moves it forward by a backoff."""

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    source_system = models.ForeignKey(SourceSystem, on_delete=models.CASCADE, related_name="+")
    record_ids = models.JSONField()
    record_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)
    # The correlation ID of the request or file load that changed the records: matching runs
    # under it, so the events its merges write carry it too (also when the sweep sent it).
    correlation_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"match {self.record_count} {self.entity_type} records from {self.source_system}"


class IngestVolume(models.Model):
    """What one source system sent of one entity type in one hour, by outcome: the
    Integrations page's volumes and rejections over a day, without counting source records.

    Written after each ingest chunk commits, one statement that adds to the hour's row
    (`mdm.services.ingest_volumes`); telemetry, so a chunk whose tally is lost (the process
    died between the two commits) only undercounts."""

    source_system = models.ForeignKey(SourceSystem, on_delete=models.CASCADE, related_name="+")
    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    hour = models.DateTimeField(help_text="The hour (UTC) the records arrived in.")
    loaded = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    stale = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    last_seen_at = models.DateTimeField(help_text="When the last record of that hour arrived.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source_system", "entity_type", "hour"], name="uniq_ingest_volume_hour"
            )
        ]
        indexes = [models.Index(fields=["hour"], name="ingest_volume_hour")]

    def __str__(self) -> str:
        return f"{self.source_system_id} {self.entity_type} {self.hour:%Y-%m-%d %H}h"
