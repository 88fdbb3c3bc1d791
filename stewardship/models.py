"""What the stewardship UI stores itself: the live-accuracy sample of automatic links, and
the permissions that define the steward and auditor roles.

Everything else a steward changes (decisions, merges, splits, pins, rules) lives in `mdm` and
`matching` and is changed through their services.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

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
