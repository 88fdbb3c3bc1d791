"""API records: integration tokens, idempotency keys, webhook subscriptions and deliveries.

Domain data lives in `mdm`; these models only hold what distribution needs on top of it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from functools import cached_property

from django.db import models
from django.utils import timezone

from api.outbound import validate_webhook_url
from api.scopes import SCOPES, default_scopes
from mdm.models import OutboxEvent, SourceSystem

TOKEN_PREFIX_LENGTH = 8


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IntegrationToken(models.Model):
    """A machine client's bearer token, bound to the source system it writes for, with the
    scopes it was granted (`api.scopes`).

    Only the SHA-256 of the token is stored; `prefix` (its first characters) is shown in the
    admin so an operator can tell tokens apart. The token itself is printed once at creation.
    """

    source_system = models.ForeignKey(
        SourceSystem, on_delete=models.PROTECT, related_name="integration_tokens"
    )
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(
        default=default_scopes, help_text="What the token may do: see api.scopes.SCOPES."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        state = " (revoked)" if self.revoked else ""
        return f"{self.source_system.code} {self.prefix}…{state}"

    @property
    def actor(self) -> str:
        return f"integration:{self.source_system.code}"

    @cached_property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes)

    @classmethod
    def issue(
        cls, source_system: SourceSystem, *, scopes: Iterable[str] | None = None
    ) -> tuple[IntegrationToken, str]:
        """A new token for `source_system` with `scopes` (default: `api.scopes.DEFAULT_SCOPES`);
        returns the row and the clear-text token."""
        scopes = default_scopes() if scopes is None else list(dict.fromkeys(scopes))
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(unknown)}")
        token = secrets.token_urlsafe(32)
        row = cls.objects.create(
            source_system=source_system,
            prefix=token[:TOKEN_PREFIX_LENGTH],
            token_hash=hash_token(token),
            scopes=scopes,
        )
        return row, token


class IdempotencyKey(models.Model):
    """A write sent with an `Idempotency-Key` header: claimed before it runs, then its answer.

    Keyed by the principal (token or user) and the key; the row is inserted *first* (the
    unique constraint decides which of two concurrent requests runs), and completed with the
    answer afterwards — `status_code` is null while the request is still running.
    `request_hash` covers method, path and body so the same key with a different request is
    refused (409) instead of replayed.
    """

    principal = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="uniq_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class WebhookSubscription(models.Model):
    """A platform's webhook: which event types go to which URL, signed with `secret`.

    `last_event_id` is the dispatch cursor: every event up to it has a delivery row (or did not
    match `event_types`, or came before the subscription: it starts from the events committed
    after it was created, or from `from_event`). Replaying moves deliveries back to pending,
    not this cursor. The URL is checked against the target policy (`api.outbound`) when saved
    and again before every delivery.
    """

    name = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=500, validators=[validate_webhook_url])
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types to send; empty means all."
    )
    secret = models.CharField(max_length=128, default=new_webhook_secret)
    active = models.BooleanField(default=True)
    owner = models.ForeignKey(
        SourceSystem,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="webhook_subscriptions",
        help_text="The integration that manages this subscription; empty for stewards'.",
    )
    last_event_id = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # the last attempt failed; another is scheduled
    DEAD = "dead"  # dead-lettered after the maximum number of attempts


class WebhookDelivery(models.Model):
    """One event for one subscription: the table is the source of truth for delivery, so a
    lost broker message or a killed worker only delays a delivery, never loses it."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(
        max_length=40,
        blank=True,
        help_text="What went wrong, as a class (timeout, connect_failed, http_status, …); "
        "a receiver's response body is never stored.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="uniq_delivery")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"event #{self.event_id} → {self.subscription} ({self.status})"
