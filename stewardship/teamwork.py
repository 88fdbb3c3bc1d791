"""Stewards sharing the review queue: claims, assignments and four-eyes approval.

- **Claims.** Opening a candidate claims it for `KEYSTONE_CLAIM_MINUTES`; every other
  steward's "next" skips it meanwhile, and a second steward opening it is told who has it.
  A decision or a skip ends the claim; an abandoned one expires. Claiming locks the
  candidate row (as a decision does), so two stewards never hold the same candidate.
- **Assignments.** A candidate given to a steward is in that steward's queue ("my queue")
  and skipped by everyone else's "next".
- **Four eyes.** A bulk decision that would take a steward past
  `KEYSTONE_FOUR_EYES_BULK_SIZE` candidates decided in bulk within
  `KEYSTONE_FOUR_EYES_WINDOW_MINUTES` (runs add up, so splitting does not avoid it), and a
  merge that overrides a hard-identifier conflict (its reason required), become an
  `ApprovalRequest`: nothing is decided until a second steward — not the one who asked —
  approves; the decisions are then made in the requester's name with the approver's in the
  reason. Candidates waiting for approval are skipped by "next". A steward's "Merge with…"
  of two golden records whose members hold conflicting hard identifiers (`merge_goldens`)
  is filed the same way, for the pair of golden records, and merges once approved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from matching.decisions import decide
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, Verdict
from matching.selectors import QueueFilters, next_candidate
from mdm.errors import CandidateClaimed, InvalidResolution
from mdm.models import GoldenRecord, GoldenStatus
from mdm.selectors import identifier_conflict
from mdm.services.audit import delete_with_history, save_with_history
from mdm.services.resolution import merge
from stewardship.models import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalStatus,
    BulkDecision,
    CandidateAssignment,
    CandidateClaim,
)
from stewardship.services import BulkOutcome, conflict_of, decide_many

NEXT_ATTEMPTS = 5


# ----------------------------------------------------------------------------------- claims


def claim(*, candidate_id: int, steward: User) -> CandidateClaim:
    """Take or renew `steward`'s claim on a candidate. Raises CandidateClaimed while another
    steward's claim holds."""
    now = timezone.now()
    with transaction.atomic():
        list(MatchCandidate.objects.select_for_update().filter(pk=candidate_id).values("pk"))
        held = CandidateClaim.objects.filter(candidate_id=candidate_id).select_related("steward")
        current = held.first()
        if current and current.steward_id != steward.pk and current.expires_at > now:
            until = timezone.localtime(current.expires_at).strftime("%H:%M")
            raise CandidateClaimed(candidate_id, current.steward.get_username(), until)
        found, _ = CandidateClaim.objects.update_or_create(
            candidate_id=candidate_id,
            defaults={
                "steward": steward,
                "claimed_at": now,
                "expires_at": now + timedelta(minutes=settings.KEYSTONE_CLAIM_MINUTES),
            },
        )
    return found


def release(*, candidate_id: int, steward: User) -> None:
    """End `steward`'s claim on a candidate (after a decision or a skip)."""
    CandidateClaim.objects.filter(candidate_id=candidate_id, steward=steward).delete()


def claim_holder(candidate_id: int) -> CandidateClaim | None:
    """The unexpired claim on a candidate, with its steward."""
    return (
        CandidateClaim.objects.filter(candidate_id=candidate_id, expires_at__gt=timezone.now())
        .select_related("steward")
        .first()
    )


def _pending_approval() -> Exists:
    waiting = ApprovalRequest.candidates.through.objects.filter(
        matchcandidate_id=OuterRef("pk"), approvalrequest__status=ApprovalStatus.PENDING
    )
    return Exists(waiting)


def free_for(steward: User) -> Q:
    """Candidates `steward` may take up: not claimed by another steward (unexpired), not
    assigned to another, not waiting for an approval."""
    claimed = CandidateClaim.objects.filter(
        candidate_id=OuterRef("pk"), expires_at__gt=timezone.now()
    ).exclude(steward=steward)
    assigned = CandidateAssignment.objects.filter(candidate_id=OuterRef("pk")).exclude(
        assignee=steward
    )
    return Q(~Exists(claimed)) & Q(~Exists(assigned)) & Q(~_pending_approval())


def assigned_to(steward: User) -> Q:
    """ "My queue": candidates assigned to `steward`."""
    return Q(
        Exists(CandidateAssignment.objects.filter(candidate_id=OuterRef("pk"), assignee=steward))
    )


def next_for(
    steward: User, filters: QueueFilters, *, mine_only: bool = False
) -> MatchCandidate | None:
    """The highest-priority candidate `steward` may take up, claimed for them. Two stewards
    asking at once get different candidates (the loser of a claim race takes the next)."""
    condition = free_for(steward) & (assigned_to(steward) if mine_only else Q())
    excluded = tuple(filters.exclude_ids)
    for _ in range(NEXT_ATTEMPTS):
        found = next_candidate(replace(filters, exclude_ids=excluded, condition=condition))
        if found is None:
            return None
        try:
            claim(candidate_id=found.pk, steward=steward)
        except CandidateClaimed:
            excluded += (found.pk,)
            continue
        return found
    return None


# ------------------------------------------------------------------------------ assignments


def assign(*, candidate_ids: Sequence[int], assignee: User, actor: User) -> int:
    """Give open candidates to `assignee` (replacing an earlier assignment); returns how many."""
    open_ids = list(
        MatchCandidate.objects.filter(
            pk__in=list(candidate_ids), status=CandidateStatus.OPEN
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        for candidate_id in open_ids:
            assignment = CandidateAssignment.objects.filter(candidate_id=candidate_id).first()
            assignment = assignment or CandidateAssignment(candidate_id=candidate_id)
            assignment.assignee, assignment.assigned_by = assignee, actor
            save_with_history(
                assignment, actor=actor, reason=f"assigned to {assignee.get_username()}"
            )
    return len(open_ids)


def unassign(*, candidate_ids: Sequence[int], actor: User) -> int:
    """Return candidates to the shared queue."""
    removed = 0
    with transaction.atomic():
        for assignment in CandidateAssignment.objects.filter(candidate_id__in=list(candidate_ids)):
            delete_with_history(assignment, actor=actor, reason="unassigned")
            removed += 1
    return removed


# -------------------------------------------------------------------------------- four eyes


def bulk_allowance(steward: User) -> int:
    """How many candidates `steward` may still decide in bulk without a second steward: the
    limit less what they decided in bulk (unapproved) within the window."""
    since = timezone.now() - timedelta(minutes=settings.KEYSTONE_FOUR_EYES_WINDOW_MINUTES)
    used = BulkDecision.objects.filter(steward=steward, created_at__gte=since).aggregate(
        total=Sum("size")
    )["total"]
    return max(settings.KEYSTONE_FOUR_EYES_BULK_SIZE - (used or 0), 0)


def bulk_needs_approval(size: int, *, steward: User) -> bool:
    return size > bulk_allowance(steward)


def reserve_bulk(*, steward: User, size: int, verdict: str) -> bool:
    """Count a bulk decision of `size` against `steward`'s allowance and say True — or say
    False, counting nothing, when it needs a second steward. One steward's concurrent
    requests are serialized on their user row, so two runs cannot both fit in one allowance.
    Counted before deciding: a candidate refused on the way still counts (never too few)."""
    with transaction.atomic():
        list(User.objects.select_for_update().filter(pk=steward.pk).values("pk"))
        if bulk_needs_approval(size, steward=steward):
            return False
        BulkDecision.objects.create(steward=steward, size=size, verdict=verdict)
    return True


def request_approval(
    *,
    kind: str,
    candidates: Sequence[MatchCandidate],
    verdict: str,
    reason: str,
    description: str,
    steward: User,
) -> ApprovalRequest:
    """File a decision for a second steward to approve; decides nothing."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidResolution("say why (a second steward reads it before approving)")
    if verdict not in Verdict.values:
        raise InvalidResolution(f"unknown verdict {verdict!r}")
    if not candidates:
        raise InvalidResolution("nothing to decide")
    with transaction.atomic():
        request = ApprovalRequest(
            kind=kind,
            verdict=verdict,
            size=len(candidates),
            description=description[:255],
            reason=reason,
            requested_by=steward,
        )
        save_with_history(request, actor=steward, reason=f"asked: {reason}")
        request.candidates.set(candidates)
    return request


def merge_goldens(
    *, survivor: GoldenRecord, loser: GoldenRecord, steward: User, reason: str
) -> GoldenRecord | ApprovalRequest:
    """A steward's "Merge with…": merges `loser` into `survivor` — unless their members hold
    conflicting hard identifiers (`mdm.identifiers`); then the reason is required and the
    merge is filed for a second steward's approval (four eyes) instead."""
    if loser.pk == survivor.pk:
        raise InvalidResolution("a golden record cannot merge with itself")
    reason = (reason or "").strip()
    conflict = identifier_conflict(survivor.entity_type, survivor.pk, loser.pk)
    if not conflict:
        return merge(
            survivor=survivor, loser=loser, actor=steward, reason=reason or "steward: merge"
        )
    if not reason:
        raise InvalidResolution(
            f"{conflict}: say why they are one all the same (a second steward reads it)"
        )
    with transaction.atomic():
        request = ApprovalRequest(
            kind=ApprovalKind.OVERRIDE,
            verdict=Verdict.MATCH,
            survivor=survivor.pk,
            loser=loser.pk,
            size=1,
            description=f"merge {loser.pk} into {survivor.pk} over {conflict}"[:255],
            reason=reason,
            requested_by=steward,
        )
        save_with_history(request, actor=steward, reason=f"asked: {reason}")
    return request


def _approve_golden_merge(request: ApprovalRequest, approver: str) -> BulkOutcome:
    outcome = BulkOutcome()
    goldens = GoldenRecord.objects.in_bulk([request.survivor, request.loser])
    survivor, loser = goldens.get(request.survivor), goldens.get(request.loser)
    if (
        survivor is None
        or loser is None
        or {survivor.status, loser.status} != {GoldenStatus.ACTIVE}
    ):
        outcome.errors.append(f"{request.loser} → {request.survivor}: no longer both active")
        return outcome
    merge(
        survivor=survivor,
        loser=loser,
        actor=request.requested_by,
        reason=f"{request.reason} (approved by {approver})",
    )
    outcome.decided = 1
    return outcome


def _locked_pending(request: ApprovalRequest, steward: User) -> ApprovalRequest:
    locked = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != ApprovalStatus.PENDING:
        raise InvalidResolution(f"approval #{locked.pk} is already {locked.status}")
    if locked.requested_by_id == steward.pk:
        raise InvalidResolution("four eyes: another steward approves or rejects this request")
    return locked


def approve(*, request: ApprovalRequest, steward: User, note: str = "") -> BulkOutcome:
    """A second steward approves: the decisions are made (each in its own transaction, as a
    bulk decision is), in the requester's name with both names in the reason."""
    with transaction.atomic():
        locked = _locked_pending(request, steward)
        locked.status = ApprovalStatus.APPROVED
        locked.decided_by, locked.decided_at, locked.note = steward, timezone.now(), note
        save_with_history(locked, actor=steward, reason=f"approved: {note}".strip(": "))
    approver = steward.get_username()
    if locked.survivor and locked.loser:
        outcome = _approve_golden_merge(locked, approver)
        locked.outcome = {"decided": outcome.decided, "refused": outcome.errors[:50]}
        ApprovalRequest.objects.filter(pk=locked.pk).update(outcome=locked.outcome)
        return outcome
    outcome = decide_many(
        candidates=list(locked.candidates.filter(status=CandidateStatus.OPEN).order_by("pk")),
        verdict=locked.verdict,
        actor=locked.requested_by,
        reason=f"{locked.reason} (approved by {approver})",
        override=locked.kind == ApprovalKind.OVERRIDE,
    )
    locked.outcome = {"decided": outcome.decided, "refused": outcome.errors[:50]}
    ApprovalRequest.objects.filter(pk=locked.pk).update(outcome=locked.outcome)
    return outcome


def reject(*, request: ApprovalRequest, steward: User, note: str) -> ApprovalRequest:
    """A second steward rejects: nothing is decided; the candidates return to the queue."""
    with transaction.atomic():
        locked = _locked_pending(request, steward)
        locked.status = ApprovalStatus.REJECTED
        locked.decided_by, locked.decided_at, locked.note = steward, timezone.now(), note
        save_with_history(locked, actor=steward, reason=f"rejected: {note}".strip(": "))
    return locked


# --------------------------------------------------------------------------------- deciding


def decide_candidate(
    *, candidate: MatchCandidate, verdict: str, steward: User, reason: str
) -> MatchDecision | ApprovalRequest:
    """A steward's decision on one candidate, ending their claim. Refused while another
    steward's claim holds. A merge over a hard-identifier conflict needs a reason and is
    filed for a second steward's approval instead of merging."""
    claim(candidate_id=candidate.pk, steward=steward)
    conflict = conflict_of(candidate) if verdict == Verdict.MATCH else ""
    if conflict:
        made: MatchDecision | ApprovalRequest = request_approval(
            kind=ApprovalKind.OVERRIDE,
            candidates=[candidate],
            verdict=verdict,
            reason=reason,
            description=f"merge candidate #{candidate.pk} over {conflict}",
            steward=steward,
        )
    else:
        made = decide(candidate=candidate, verdict=verdict, actor=steward, reason=reason)
    release(candidate_id=candidate.pk, steward=steward)
    return made
