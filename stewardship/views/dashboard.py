"""Dashboard and live accuracy (stewards confirm a random sample of automatic links)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404

from matching.selectors import AGE_BANDS, queue_size_by_entity_and_age
from mdm.entities import ENTITIES
from stewardship.models import AutoLinkSample, SampleVerdict
from stewardship.selectors import (
    accuracy_report,
    entity_figures,
    last_match_runs,
    open_rejections,
    sample_rows,
)
from stewardship.services import draw_accuracy_sample, review_sample, sample_rate
from stewardship.views.base import StewardView, posted_id, reason_from


class DashboardView(StewardView):
    template_name = "stewardship/dashboard.html"
    title = "Stewardship dashboard"
    section = "dashboard"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        queue = queue_size_by_entity_and_age()
        queue_rows = [
            (
                name,
                queue.get(name, {}).get("total", 0),
                [queue.get(name, {}).get(a, 0) for a in AGE_BANDS],
            )
            for name in ENTITIES
        ]
        context.update(
            queue_rows=queue_rows,
            queue_total=sum(row[1] for row in queue_rows),
            ages=AGE_BANDS,
            figures=entity_figures(),
            runs=last_match_runs(),
            rejections=open_rejections(),
            accuracy=accuracy_report(),
        )
        return context


class AccuracyView(StewardView):
    template_name = "stewardship/accuracy.html"
    title = "Live accuracy of automatic links"
    section = "accuracy"
    actions = ("draw_sample", "confirm_sample", "reject_sample")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        pending = AutoLinkSample.objects.filter(verdict=SampleVerdict.PENDING).select_related(
            "record__source_system", "record__golden"
        )
        page = Paginator(pending.order_by("drawn_at", "id"), 10).get_page(
            self.request.GET.get("page")
        )
        samples = list(page.object_list)
        reviewed = AutoLinkSample.objects.exclude(verdict=SampleVerdict.PENDING).select_related(
            "record__source_system", "reviewed_by"
        )
        context.update(
            page=page,
            samples=sample_rows(samples),
            reviewed=reviewed.order_by("-reviewed_at")[:20],
            accuracy=accuracy_report(),
            rate_percent=round(sample_rate() * 100, 3),
        )
        return context

    def do_draw_sample(self, request):
        try:
            rate = float(request.POST.get("rate_percent", "")) / 100
        except ValueError:
            rate = sample_rate()
        drawn = draw_accuracy_sample(rate=rate)
        messages.success(request, f"Drew {len(drawn)} automatic link(s) for review.")
        return HttpResponseRedirect(request.path)

    def _review(self, request, confirmed: bool):
        sample = get_object_or_404(AutoLinkSample, pk=posted_id(request, "sample"))
        review_sample(
            sample=sample, confirmed=confirmed, actor=request.user, reason=reason_from(request)
        )
        verdict = "confirmed" if confirmed else "rejected"
        messages.success(request, f"Sample #{sample.pk} {verdict}.")
        return HttpResponseRedirect(request.get_full_path())

    def do_confirm_sample(self, request):
        return self._review(request, True)

    def do_reject_sample(self, request):
        return self._review(request, False)
