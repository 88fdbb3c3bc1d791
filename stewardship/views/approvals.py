"""Four eyes: decisions waiting for a second steward (`stewardship.teamwork`)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from stewardship.models import ApprovalRequest, ApprovalStatus
from stewardship.teamwork import approve, reject
from stewardship.views.base import StewardView, posted_id, reason_from, steward_of

SHOWN_CANDIDATES = 20


class ApprovalsView(StewardView):
    template_name = "stewardship/approvals.html"
    title = "Waiting for a second steward"
    section = "queue"
    actions = ("approve", "reject_request")

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        pending = list(
            ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING)
            .select_related("requested_by")
            .order_by("requested_at", "id")
        )
        through = ApprovalRequest.candidates.through.objects.filter(
            approvalrequest_id__in=[r.pk for r in pending]
        ).select_related("matchcandidate__left__golden", "matchcandidate__right__golden")
        shown: dict[int, list] = {r.pk: [] for r in pending}
        for row in through.order_by("approvalrequest_id", "matchcandidate_id"):
            if len(shown[row.approvalrequest_id]) < SHOWN_CANDIDATES:
                shown[row.approvalrequest_id].append(row.matchcandidate)
        recent = (
            ApprovalRequest.objects.exclude(status=ApprovalStatus.PENDING)
            .select_related("requested_by", "decided_by")
            .order_by("-decided_at", "-id")[:20]
        )
        context.update(
            pending=[(r, shown[r.pk]) for r in pending], recent=recent, me=self.request.user
        )
        return context

    def _request(self, request: HttpRequest) -> ApprovalRequest:
        return get_object_or_404(ApprovalRequest, pk=posted_id(request, "request"))

    def do_approve(self, request: HttpRequest) -> HttpResponse:
        filed = self._request(request)
        outcome = approve(request=filed, steward=steward_of(request), note=reason_from(request))
        messages.success(request, f"Request #{filed.pk} approved: {outcome.decided} decided.")
        for error in outcome.errors[:10]:
            messages.error(request, error)
        return HttpResponseRedirect(reverse("stewardship:approvals"))

    def do_reject_request(self, request: HttpRequest) -> HttpResponse:
        filed = reject(
            request=self._request(request), steward=steward_of(request), note=reason_from(request)
        )
        messages.success(request, f"Request #{filed.pk} rejected: nothing was decided.")
        return HttpResponseRedirect(reverse("stewardship:approvals"))
