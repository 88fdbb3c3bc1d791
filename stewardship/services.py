"""Writes of the stewardship app: the live-accuracy sample, bulk decisions, and the
Integrations page's replays (rejected records, dead-lettered deliveries).

Bulk decisions are many single decisions (`matching.decisions.decide`), each in its own
transaction, so one refused pair does not undo the others.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import WebhookSubscription
from api.tasks import nudge_deliveries
from api.webhooks import replay_dead_letters
from matching.decisions import decide
from matching.models import MatchCandidate, Verdict
from mdm.entities import ENTITIES
from mdm.errors import InvalidResolution, MdmError
from mdm.models import IngestRejection, LinkMethod, RejectionStatus, SourceRecord
from mdm.selectors import identifier_conflict
from mdm.services.audit import Actor, actor_user, save_with_history
from mdm.services.rejections import replay_rejections
from stewardship.models import AutoLinkSample, SampleVerdict


def sample_rate() -> float:
    """`settings.KEYSTONE_ACCURACY_SAMPLE_RATE` (share of automatic links), default 1%."""
    return settings.KEYSTONE_ACCURACY_SAMPLE_RATE


def draw_accuracy_sample(
    *, rate: float | None = None, entity_types: Iterable[str] | None = None, seed: int | None = None
) -> list[AutoLinkSample]:
    """Draw `rate` of the automatic links not sampled yet (at least one per entity type that
    has any), at random, for stewards to confirm. Returns the new samples."""
    rate = sample_rate() if rate is None else rate
    if not 0 < rate <= 1:
        raise InvalidResolution("the sample rate must be in (0, 1]")
    chooser = random.Random(seed)
    drawn = []
    with transaction.atomic():
        for entity_type in entity_types or ENTITIES:
            sampled = AutoLinkSample.objects.filter(entity_type=entity_type).values("record_id")
            pool = list(
                SourceRecord.objects.filter(
                    entity_type=entity_type,
                    link_method=LinkMethod.AUTO,
                    deleted=False,
                    golden__isnull=False,
                )
                .exclude(pk__in=sampled)
                .values_list("pk", "golden_id", "link_probability", "linked_at")
            )
            if not pool:
                continue
            size = max(1, round(len(pool) * rate))
            drawn += [
                AutoLinkSample(
                    entity_type=entity_type,
                    record_id=pk,
                    golden_id=golden_id,
                    link_probability=probability,
                    linked_at=linked_at,
                )
                for pk, golden_id, probability, linked_at in chooser.sample(pool, size)
            ]
        AutoLinkSample.objects.bulk_create(drawn)
    return drawn


def review_sample(
    *, sample: AutoLinkSample, confirmed: bool, actor: Actor, reason: str = ""
) -> AutoLinkSample:
    """A steward's verdict on one sampled automatic link. Rejecting changes no link by itself:
    the steward splits the record out on the golden record page."""
    with transaction.atomic():
        sample = AutoLinkSample.objects.select_for_update().get(pk=sample.pk)
        sample.verdict = SampleVerdict.CONFIRMED if confirmed else SampleVerdict.REJECTED
        sample.reason = reason.strip()
        sample.reviewed_by = actor_user(actor)
        sample.reviewed_at = timezone.now()
        save_with_history(sample, actor=actor, reason=reason or sample.verdict)
    return sample


@dataclass
class BulkOutcome:
    decided: int = 0
    errors: list[str] = field(default_factory=list)


def conflict_of(candidate: MatchCandidate) -> str:
    """The hard-identifier conflict a merge of `candidate` would override ("conflicting tax
    IDs: DE136695976 / GB980780684"), or "": what the two golden records' members hold now
    (`mdm.identifiers.conflicts`), whatever text matching stored with the candidate."""
    return identifier_conflict(
        candidate.entity_type, candidate.left_golden_id, candidate.right_golden_id
    )


def decide_many(
    *,
    candidates: Iterable[MatchCandidate],
    verdict: str,
    actor: Actor,
    reason: str,
    override: bool = False,
) -> BulkOutcome:
    """Apply one verdict to many candidates; refused ones are reported, the rest applied.
    A merge over a hard-identifier conflict is refused unless a second steward approved it
    (`override`, from `stewardship.teamwork.approve`)."""
    outcome = BulkOutcome()
    for candidate in candidates:
        conflict = conflict_of(candidate) if verdict == Verdict.MATCH else ""
        if conflict and not override:
            outcome.errors.append(
                f"candidate #{candidate.pk}: {conflict} — a merge over it needs a second "
                "steward's approval"
            )
            continue
        try:
            decide(candidate=candidate, verdict=verdict, actor=actor, reason=reason)
        except MdmError as error:
            outcome.errors.append(f"candidate #{candidate.pk}: {error}")
        else:
            outcome.decided += 1
    return outcome


# ---------------------------------------------------------------------------- integrations


REPLAY_BATCH = 1000  # open rejections replayed per press of the button (oldest first)


def replay_source_rejections(*, system_code: str, actor: Actor) -> dict[str, int]:
    """Replay the open rejections of one source system (up to REPLAY_BATCH, oldest first):
    those that load now are marked replayed, the others keep their row with the new reason."""
    rejections = IngestRejection.objects.filter(
        status=RejectionStatus.OPEN, source_system=system_code
    ).order_by("created_at", "id")[:REPLAY_BATCH]
    return replay_rejections(rejections=list(rejections), actor=actor)


def replay_subscription_dead_letters(*, subscription_id: int) -> int:
    """Send the subscription's dead letters again; the webhook sweep is asked to run once the
    change commits (best effort: beat runs it anyway)."""
    subscription = WebhookSubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        raise InvalidResolution(f"no webhook subscription {subscription_id}")
    with transaction.atomic():
        count = replay_dead_letters(subscription=subscription)
        transaction.on_commit(nudge_deliveries)
    return count
