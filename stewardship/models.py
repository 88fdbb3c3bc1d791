"""What the stewardship UI stores itself: the live-accuracy sample of automatic links, the
teamwork on the review queue (claims, assignments, four-eyes approval requests), and the
permissions that define the steward and auditor roles.

Everything else a steward changes (decisions, merges, splits, pins, rules) lives in `mdm` and
`matching` and is changed through their services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from matching.models import MatchCandidate
from mdm.entities import ENTITY_CHOICES
from mdm.models import SourceRecord, audited_history


class Stewardship(models.Model):
    """Holder of the role permissions (no table). `setup_roles` grants them to the groups."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("browse", "Can browse the stewardship pages and history"),
            ("decide_candidate", "Can decide match candidates (merge / not a match)"),
            ("merge_golden", "Can merge golden records"),
            ("split_golden", "Can split source records out of a golden record"),
            ("pin_value", "Can pin and unpin golden record values"),
            ("edit_rules", "Can edit survivorship rules"),
            ("review_sample", "Can confirm or reject sampled automatic links"),
            ("manage_models", "Can stage, activate and discard match model versions"),
            (
                "operate_integrations",
                "Can replay rejected records and dead-lettered webhook deliveries",
            ),
        ]

    def __str__(self) -> str:
        return "stewardship"


class SampleVerdict(models.TextChoices):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class AutoLinkSample(models.Model):
    """One automatic link drawn at random for a steward to confirm or reject.

    The share of confirmations estimates the precision of automatic linking. The link is
    copied at draw time (golden record, probability, when it was linked) so the estimate
    stays about the link the matcher made, even if the record moves afterwards.
    """

    entity_type = models.CharField(max_length=20, choices=ENTITY_CHOICES, db_index=True)
    record = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    golden_id = models.CharField(max_length=20)
    link_probability = models.FloatField(null=True, blank=True)
    linked_at = models.DateTimeField(null=True, blank=True)
    verdict = models.CharField(
        max_length=10,
        choices=SampleVerdict.choices,
        default=SampleVerdict.PENDING,
        db_index=True,
    )
    reason = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    drawn_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["drawn_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["record", "golden_id"], name="uniq_sample_link")
        ]

    def __str__(self) -> str:
        return f"sample #{self.pk} {self.entity_type} record {self.record_id}: {self.verdict}"


class CandidateClaim(models.Model):
    """A steward working on a match candidate: other stewards skip it until the claim ends
    (a decision, a skip) or expires (`KEYSTONE_CLAIM_MINUTES` after it was last taken)."""

    candidate = models.OneToOneField(
        MatchCandidate, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    steward = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"candidate #{self.candidate_id} claimed by {self.steward_id}"


class CandidateAssignment(models.Model):
    """A match candidate given to one steward: it is in that steward's queue, and others'
    "next" skips it."""

    candidate = models.OneToOneField(
        MatchCandidate, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        indexes = [models.Index(fields=["assignee"])]

    def __str__(self) -> str:
        return f"candidate #{self.candidate_id} assigned to {self.assignee_id}"


class BulkDecision(models.Model):
    """A bulk decision one steward made without a second steward: the four-eyes limit counts
    these over a window (`stewardship.teamwork.reserve_bulk`), so a large decision split into
    small runs still needs four eyes."""

    steward = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    size = models.PositiveIntegerField()
    verdict = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["steward", "created_at"])]

    def __str__(self) -> str:
        return f"{self.size} decided in bulk by {self.steward_id}"


class ApprovalKind(models.TextChoices):
    BULK = "bulk", "bulk decision"
    OVERRIDE = "override", "merge over a hard-identifier conflict"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ApprovalRequest(models.Model):
    """A decision that needs a second steward (four eyes): a bulk decision that would take a
    steward past `KEYSTONE_FOUR_EYES_BULK_SIZE` candidates decided in bulk within
    `KEYSTONE_FOUR_EYES_WINDOW_MINUTES`, or a merge that overrides a hard-identifier
    conflict. Nothing is decided until another steward approves; then the decisions are
    made in the requester's name with both names in the reason."""

    kind = models.CharField(max_length=10, choices=ApprovalKind.choices)
    verdict = models.CharField(max_length=12)
    candidates = models.ManyToManyField(MatchCandidate, related_name="+")
    # A steward's "Merge with…" of two golden records over a hard-identifier conflict (no
    # candidate): `loser` merges into `survivor` once approved.
    survivor = models.CharField(max_length=20, blank=True, default="")
    loser = models.CharField(max_length=20, blank=True, default="")
    size = models.PositiveIntegerField(help_text="How many candidates it decides.")
    description = models.CharField(
        max_length=255, blank=True, help_text="What was asked for (filters, the pair)."
    )
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=10,
        choices=ApprovalStatus.choices,
        default=ApprovalStatus.PENDING,
        db_index=True,
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    outcome = models.JSONField(default=dict, blank=True, help_text="Decided, refused (why).")

    history = audited_history()

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"approval #{self.pk}: {self.get_kind_display()} ({self.status})"
