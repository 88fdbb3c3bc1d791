"""Matching records: trained models per entity type, match runs, and match candidates."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mdm.entities import ENTITY_CHOICES
from mdm.models import GoldenRecord, SourceRecord, audited_history

USER_MODEL = settings.AUTH_USER_MODEL  # MatchModel's `settings` field hides the module


class ModelChange(models.TextChoices):
    FIRST = "first", "first model"
    RETRAIN = "retrain", "retrained"
    THRESHOLDS = "thresholds", "threshold change"


class MatchModel(models.Model):
    """A trained Splink model for one entity type, with the thresholds it applies. Versions
    only grow; one is active.

    The first version is active at once; every later one (a retrain, a threshold change) is
    *staged*: it applies nothing until a steward activates it, having read `diff` — what it
    would change against the active one (`matching.activation`). Activation and discarding
    are recorded with who, when and why.
    """

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    version = models.PositiveIntegerField()
    settings = models.JSONField(help_text="The Splink model (settings with m/u and prior).")
    training_report = models.JSONField(default=dict, blank=True)
    thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text="auto_link and review this version applies; empty: the spec's (or settings').",
    )
    change = models.CharField(max_length=12, choices=ModelChange.choices, default=ModelChange.FIRST)
    staged_by = models.CharField(max_length=150, blank=True)
    staging_reason = models.TextField(blank=True)
    compared_with = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    diff = models.JSONField(
        default=dict, blank=True, help_text="What activating would change (matching.activation)."
    )
    trained_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activation_reason = models.TextField(blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.ForeignKey(
        USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discard_reason = models.TextField(blank=True)

    history = audited_history(excluded_fields=["settings", "training_report", "diff"])

    class Meta:
        ordering = ["entity_type", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["entity_type", "version"], name="uniq_model_version"),
            models.UniqueConstraint(
                fields=["entity_type"],
                condition=models.Q(is_active=True),
                name="uniq_active_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} model v{self.version} ({self.state})"

    @property
    def state(self) -> str:
        """active; staged (waiting for a steward); discarded; retired (active once)."""
        if self.is_active:
            return "active"
        if self.discarded_at:
            return "discarded"
        if self.activated_at:
            return "retired"
        return "staged"


class RunStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class MatchRun(models.Model):
    """One batch matching run: what it did, how long each step took, and how it ended."""

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING, db_index=True
    )
    model = models.ForeignKey(MatchModel, null=True, blank=True, on_delete=models.SET_NULL)
    retrained = models.BooleanField(default=False)
    actor = models.CharField(max_length=150, blank=True)
    phase = models.CharField(
        max_length=20, blank=True, help_text="The step a running run is in (progress)."
    )
    records = models.PositiveIntegerField(default=0)
    pairs_scored = models.PositiveIntegerField(default=0)
    merges = models.PositiveIntegerField(default=0)
    sent_to_review = models.PositiveIntegerField(default=0)
    goldens_before = models.PositiveIntegerField(default=0)
    goldens_after = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per step.")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.entity_type} run #{self.pk} {self.status}"

    @property
    def seconds(self) -> float | None:
        """How long the run took; None while it runs."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class CandidateStatus(models.TextChoices):
    OPEN = "open"
    NOT_A_MATCH = "not_a_match"
    LINKED = "linked"
    SUPERSEDED = "superseded"


class MatchCandidate(models.Model):
    """A pair of golden records a steward should decide on: may they be one thing?

    At most one open candidate per pair of golden records (`left_golden` has the lower ID).
    The evidence is the best-scoring pair of their member records (`left` in `left_golden`,
    `right` in `right_golden`) with its probability, match weight and explanation; `pairs`
    lists every scored member pair, that one first. `reason` says why the pair needs a
    person when the model alone would not send it (a constraint refused an auto-link).
    `matching.review` is the one place that opens, updates, supersedes and reopens them.
    """

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    left_golden = models.ForeignKey(
        GoldenRecord, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    right_golden = models.ForeignKey(
        GoldenRecord, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    left = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField()
    match_weight = models.FloatField()
    explanation = models.JSONField(
        default=dict, blank=True, help_text="Per attribute: level, both values, match weight."
    )
    pairs = models.JSONField(
        default=list,
        blank=True,
        help_text="Every scored member pair (records, probability, match weight, reason; "
        "explanation but for the first), best first: the first is the evidence above.",
    )
    reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=12, choices=CandidateStatus.choices, default=CandidateStatus.OPEN, db_index=True
    )
    model = models.ForeignKey(MatchModel, null=True, blank=True, on_delete=models.SET_NULL)
    run = models.ForeignKey(MatchRun, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-probability", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["left_golden", "right_golden"],
                condition=models.Q(status="open"),
                name="uniq_open_candidate_goldens",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="open")
                | models.Q(left_golden__lt=models.F("right_golden")),
                name="open_candidate_goldens_ordered",
            ),
        ]
        indexes = [
            models.Index(fields=["entity_type", "status", "-probability"]),
            models.Index(fields=["left_golden", "right_golden"], name="candidate_goldens"),
            models.Index(
                fields=["right_golden"],
                condition=models.Q(status="open"),
                name="candidate_open_right_golden",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.entity_type} {self.left_golden_id}~{self.right_golden_id} "
            f"p={self.probability:.3f}"
        )


class Verdict(models.TextChoices):
    MATCH = "match"
    NOT_A_MATCH = "not_a_match"


class DecisionOrigin(models.TextChoices):
    CANDIDATE = "candidate", "decided on a match candidate"
    SPLIT = "split", "a steward split a golden record"


class MatchDecision(models.Model):
    """A steward's verdict on two golden records, with the evidence it was made on.

    The decision binds the members both golden records had when it was made (`records`,
    each on its side): "not a match" keeps every left member apart from every right member,
    in every later matching run and however the golden records change; a split records
    such a decision between the two groups it creates. A "match" was applied as a steward
    merge, which matching never splits. `left`/`right` name the record pair the steward
    looked at (the candidate's best pair; for a split, one record of each group).
    `evidence` fingerprints the match attributes of all those records; when it no longer
    matches them, the decision is stale and the pair returns to the review queue (still
    never auto-linked) until a steward decides again. A steward merge of records a decision
    keeps apart retires that decision (`is_current` false).
    """

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    left = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    left_golden = models.ForeignKey(
        GoldenRecord,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The left record's golden record when the decision was made.",
    )
    right_golden = models.ForeignKey(
        GoldenRecord,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The right record's golden record when the decision was made.",
    )
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    origin = models.CharField(
        max_length=12, choices=DecisionOrigin.choices, default=DecisionOrigin.CANDIDATE
    )
    evidence = models.CharField(
        max_length=64, help_text="Fingerprint of the match attributes of both sides' records."
    )
    candidate = models.ForeignKey(
        MatchCandidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    is_current = models.BooleanField(
        default=True, help_text="False once a newer decision replaced it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history(no_db_index=["left_golden", "right_golden"])

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(left__lt=models.F("right")), name="decision_left_lt_right"
            ),
            models.UniqueConstraint(
                fields=["left", "right"],
                condition=models.Q(is_current=True),
                name="uniq_current_decision",
            ),
        ]
        indexes = [models.Index(fields=["entity_type", "verdict", "is_current"])]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.left_id}~{self.right_id}: {self.verdict}"


class DecisionSide(models.TextChoices):
    LEFT = "left"
    RIGHT = "right"


class MatchDecisionRecord(models.Model):
    """A source record a decision binds, and on which side (its golden record's members
    when the decision was made)."""

    decision = models.ForeignKey(MatchDecision, on_delete=models.CASCADE, related_name="records")
    record = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    side = models.CharField(max_length=5, choices=DecisionSide.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision", "record"], name="uniq_decision_record")
        ]

    def __str__(self) -> str:
        return f"decision {self.decision_id}: {self.side} {self.record_id}"


class MatchKey(models.Model):
    """The blocking-key index: for every live source record, the value of each of its spec's
    blocking keys (one row per key with a value). Incremental matching and the probe find
    candidate records here by the same keys the batch run blocks on.

    Rebuilt per entity type by every batch run, kept current for changed records by the
    incremental path. See `matching.keys`.
    """

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    name = models.CharField(max_length=100, help_text="The blocking key (rule's expressions).")
    value = models.CharField(max_length=255)
    # A derived table, rewritten wholesale by every batch run: no database-level foreign key,
    # whose per-row checks at commit cost as much as writing the keys (source records are
    # never deleted, only tombstoned; Django still cascades a deletion).
    record = models.ForeignKey(
        SourceRecord, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )

    class Meta:
        indexes = [
            models.Index(fields=["entity_type", "name", "value"], name="matchkey_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.name}={self.value} → {self.record_id}"


class TermFrequency(models.Model):
    """How often each value of a term-frequency-adjusted column occurs among the live
    records of an entity type (Splink's ``tf_<column>``), as of the last batch run.
    Incremental scoring reads it so a pair scores as the batch run scored it."""

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    column = models.CharField(max_length=100)
    value = models.TextField()
    frequency = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["entity_type", "column", "value"], name="termfrequency_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.column}={self.value}: {self.frequency:.3g}"


class GenericValue(models.Model):
    """A value of a checked column that many unrelated records share (`matching.generic`),
    as of the last batch run: `things` is how many different names share it. Frames null it,
    so it neither blocks nor scores."""

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES)
    column = models.CharField(max_length=100)
    value = models.TextField()
    things = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["entity_type", "column", "value"], name="genericvalue_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.column}={self.value}: {self.things} names"
