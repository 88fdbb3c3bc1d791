"""Review queue and candidate page: the steward's main loop (decide, then the next pair)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import urlencode

from matching.decisions import decide
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, Verdict
from matching.selectors import (
    AGE_BANDS,
    PROBABILITY_BANDS,
    QueueFilters,
    RankedQueue,
    next_candidate,
    review_queue,
)
from mdm.entities import ENTITIES, get_entity
from mdm.models import SourceSystem
from stewardship.selectors import golden_members
from stewardship.services import decide_many
from stewardship.views.base import StewardView, reason_from

PAGE_SIZE = 25
BULK_LIMIT = 500
SKIPPED_KEY = "stewardship_skipped"
SKIPPED_LIMIT = 500


def filters_from(params) -> QueueFilters:
    return QueueFilters(
        entity_type=params.get("entity", "") if params.get("entity") in ENTITIES else "",
        system=params.get("system", "")[:32],
        band=params.get("band", "") if params.get("band") in PROBABILITY_BANDS else "",
        age=params.get("age", "") if params.get("age") in AGE_BANDS else "",
    )


def skipped(request) -> tuple[int, ...]:
    return tuple(request.session.get(SKIPPED_KEY, []))


def candidate_url(candidate_id: int, filters: QueueFilters) -> str:
    query = urlencode(filters.as_query())
    url = reverse("stewardship:candidate", args=[candidate_id])
    return f"{url}?{query}" if query else url


def next_url(filters: QueueFilters) -> str:
    query = urlencode(filters.as_query())
    url = reverse("stewardship:queue_next")
    return f"{url}?{query}" if query else url


class QueueView(StewardView):
    template_name = "stewardship/queue.html"
    title = "Review queue"
    section = "queue"
    actions = ("bulk_merge", "bulk_not_a_match")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters = filters_from(self.request.GET)
        # RankedQueue pages by count and slices, all Django's paginator uses of it
        paginator: Paginator[MatchCandidate] = Paginator(RankedQueue(filters), PAGE_SIZE)  # type: ignore[arg-type]
        page = paginator.get_page(self.request.GET.get("page"))
        context.update(
            filters=filters,
            filter_query=urlencode(filters.as_query()),
            page=page,
            candidates=page.object_list,
            entities=list(ENTITIES),
            systems=SourceSystem.objects.values_list("code", flat=True),
            bands=PROBABILITY_BANDS,
            ages=AGE_BANDS,
            skipped_count=len(skipped(self.request)),
        )
        return context

    def _bulk(self, request, verdict: str):
        filters = filters_from(request.GET)
        queue = review_queue(filters)
        if request.POST.get("scope") != "all":
            ids = [int(i) for i in request.POST.getlist("selected") if i.isdigit()]
            queue = queue.filter(pk__in=ids)
        chosen = list(queue[:BULK_LIMIT])
        if not chosen:
            messages.warning(request, "Select at least one candidate.")
            return HttpResponseRedirect(request.get_full_path())
        outcome = decide_many(
            candidates=chosen,
            verdict=verdict,
            actor=request.user,
            reason=reason_from(request, f"bulk: {verdict}"),
        )
        label = "merged" if verdict == Verdict.MATCH else "marked not a match"
        messages.success(request, f"{outcome.decided} candidate(s) {label}.")
        for error in outcome.errors[:10]:
            messages.error(request, error)
        return HttpResponseRedirect(request.get_full_path())

    def do_bulk_merge(self, request):
        return self._bulk(request, Verdict.MATCH)

    def do_bulk_not_a_match(self, request):
        return self._bulk(request, Verdict.NOT_A_MATCH)


class NextCandidateView(StewardView):
    """Open the highest-priority open candidate (skipped ones last in line: excluded)."""

    def get(self, request, *args, **kwargs):
        filters = filters_from(request.GET)
        ahead = next_candidate(replace(filters, exclude_ids=skipped(request)))
        if ahead is None:
            messages.info(request, "No more open candidates for these filters.")
            query = urlencode(filters.as_query())
            url = reverse("stewardship:queue")
            return HttpResponseRedirect(f"{url}?{query}" if query else url)
        return HttpResponseRedirect(candidate_url(ahead.pk, filters))


@dataclass
class ComparedAttribute:
    name: str
    label: str
    left: Any
    right: Any
    agreement: str  # same | differ | one-sided | empty
    level: str = ""


def compare(candidate: MatchCandidate) -> list[ComparedAttribute]:
    entity = get_entity(candidate.entity_type)
    explanation = candidate.explanation or {}
    rows = []
    for attribute in entity.attributes:
        left = candidate.left.attributes.get(attribute.name)
        right = candidate.right.attributes.get(attribute.name)
        if left in (None, "") and right in (None, ""):
            agreement = "empty"
        elif left in (None, "") or right in (None, ""):
            agreement = "one-sided"
        else:
            agreement = "same" if left == right else "differ"
        level = explanation.get(attribute.name, {}).get("level", "")
        rows.append(
            ComparedAttribute(attribute.name, attribute.verbose_name, left, right, agreement, level)
        )
    return rows


@dataclass
class ListedPair:
    """One scored member pair of a candidate, as the page lists it."""

    left: str
    right: str
    probability: float
    match_weight: float
    reason: str


def listed_pairs(candidate: MatchCandidate, members: dict[str, list]) -> list[ListedPair]:
    """The candidate's scored member pairs, each record as system:key (read from the members
    already loaded: no query)."""
    label = {
        record.pk: f"{record.source_system.code}:{record.source_key}"
        for records in members.values()
        for record in records
    }
    return [
        ListedPair(
            label.get(pair["left"], f"record {pair['left']}"),
            label.get(pair["right"], f"record {pair['right']}"),
            float(pair["probability"]),
            float(pair["match_weight"]),
            pair.get("reason", ""),
        )
        for pair in candidate.pairs or []
    ]


@dataclass
class WeightBar:
    name: str
    level: str
    weight: float
    offset: float  # percent from the left edge
    width: float  # percent


def weight_bars(explanation: dict) -> tuple[list[WeightBar], float]:
    """A diverging bar per comparison: right of the axis for evidence of a match, left
    against it; widths on one scale (percent of half the chart)."""
    weights = {name: float(item.get("match_weight", 0.0)) for name, item in explanation.items()}
    scale = max([abs(w) for w in weights.values()] + [1.0])
    bars = []
    for name, weight in weights.items():
        width = abs(weight) / scale * 50
        offset = 50 if weight >= 0 else 50 - width
        level = str(explanation[name].get("level", ""))
        bars.append(WeightBar(name, level, weight, round(offset, 2), round(width, 2)))
    return bars, scale


class CandidateView(StewardView):
    template_name = "stewardship/candidate.html"
    section = "queue"
    actions = ("merge", "not_a_match", "skip")

    def get_candidate(self) -> MatchCandidate:
        return get_object_or_404(
            MatchCandidate.objects.select_related(
                "left__source_system",
                "right__source_system",
                "left__golden",
                "right__golden",
                "left_golden",
                "right_golden",
                "model",
                "run",
            ),
            pk=self.kwargs["pk"],
        )

    def get_title(self) -> str:
        return f"Match candidate #{self.kwargs['pk']}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        candidate = self.get_candidate()
        filters = filters_from(self.request.GET)
        golden_ids = {
            g for g in (candidate.left.golden_id, candidate.right.golden_id) if g is not None
        }
        members = golden_members(golden_ids)
        bars, scale = weight_bars(candidate.explanation or {})
        pair = sorted((candidate.left_id, candidate.right_id))
        decisions = list(
            MatchDecision.objects.filter(
                Q(candidate=candidate) | Q(left_id=pair[0], right_id=pair[1])
            ).select_related("decided_by")[:5]
        )
        context.update(
            candidate=candidate,
            is_open=candidate.status == CandidateStatus.OPEN,
            rows=compare(candidate),
            bars=bars,
            scale=scale,
            left_members=members.get(candidate.left.golden_id or "", []),
            right_members=members.get(candidate.right.golden_id or "", []),
            same_golden=candidate.left.golden_id == candidate.right.golden_id,
            pairs=listed_pairs(candidate, members),
            decisions=decisions,
            filters=filters,
            filter_query=urlencode(filters.as_query()),
        )
        return context

    def _decide(self, request, verdict: str, done: str):
        candidate = self.get_candidate()
        decide(
            candidate=candidate, verdict=verdict, actor=request.user, reason=reason_from(request)
        )
        messages.success(request, f"Candidate #{candidate.pk}: {done}.")
        return HttpResponseRedirect(next_url(filters_from(request.GET)))

    def do_merge(self, request, pk):
        return self._decide(request, Verdict.MATCH, "merged")

    def do_not_a_match(self, request, pk):
        return self._decide(request, Verdict.NOT_A_MATCH, "marked not a match")

    def do_skip(self, request, pk):
        seen = [i for i in skipped(request) if i != pk][-SKIPPED_LIMIT + 1 :]
        request.session[SKIPPED_KEY] = [*seen, pk]
        messages.info(request, f"Candidate #{pk} skipped for this session.")
        return HttpResponseRedirect(next_url(filters_from(request.GET)))
