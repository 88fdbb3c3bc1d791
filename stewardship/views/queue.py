"""Review queue and candidate page: the steward's main loop (decide, then the next pair)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import urlencode

from matching.explain import described, field_readings, prior_weight, weight_chart
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, Verdict
from matching.scoring import stored_settings
from matching.selectors import (
    AGE_BANDS,
    PROBABILITY_BANDS,
    QueueFilters,
    RankedQueue,
    review_queue,
)
from mdm.entities import ENTITIES, STAKES, get_entity
from mdm.errors import CandidateClaimed, InvalidResolution
from mdm.models import GoldenRecord, SourceSystem
from stewardship.models import ApprovalKind, ApprovalRequest
from stewardship.roles import permission_for
from stewardship.selectors import (
    approvals_waiting,
    candidate_page,
    my_queue_count,
    stewards,
    work_on,
)
from stewardship.services import conflict_of, decide_many
from stewardship.teamwork import (
    assign,
    assigned_to,
    bulk_needs_approval,
    claim,
    claim_holder,
    decide_candidate,
    free_for,
    next_for,
    release,
    request_approval,
    reserve_bulk,
    unassign,
)
from stewardship.views.base import StewardView, ids_from, posted_id, reason_from, steward_of

PAGE_SIZE = 25
BULK_LIMIT = 500
SKIPPED_KEY = "stewardship_skipped"
SKIPPED_LIMIT = 500


@dataclass(frozen=True)
class DeskQuery:
    """The queue filters plus "my queue" (candidates assigned to me), as the desk's URLs
    carry them from the queue to a candidate and on to the next."""

    filters: QueueFilters
    mine: bool = False

    def as_query(self) -> dict[str, str]:
        return self.filters.as_query() | ({"mine": "1"} if self.mine else {})

    def encoded(self) -> str:
        return urlencode(self.as_query())


def filters_from(params) -> QueueFilters:
    return QueueFilters(
        entity_type=params.get("entity", "") if params.get("entity") in ENTITIES else "",
        system=params.get("system", "")[:32],
        band=params.get("band", "") if params.get("band") in PROBABILITY_BANDS else "",
        age=params.get("age", "") if params.get("age") in AGE_BANDS else "",
    )


def desk_query(params) -> DeskQuery:
    return DeskQuery(filters_from(params), mine=params.get("mine") == "1")


def skipped(request) -> tuple[int, ...]:
    return tuple(request.session.get(SKIPPED_KEY, []))


def _with(url: str, query: DeskQuery) -> str:
    encoded = query.encoded()
    return f"{url}?{encoded}" if encoded else url


def candidate_url(candidate_id: int, query: DeskQuery) -> str:
    return _with(reverse("stewardship:candidate", args=[candidate_id]), query)


def next_url(query: DeskQuery) -> str:
    return _with(reverse("stewardship:queue_next"), query)


def queue_url(query: DeskQuery) -> str:
    return _with(reverse("stewardship:queue"), query)


def stakes_of(candidate: MatchCandidate) -> list[str]:
    """The impact's parts as a steward reads them ("36,000 contract value", "3 systems")."""
    parts = []
    for name, stake in STAKES.items():
        amount = getattr(candidate, name, 0) or 0
        if amount:
            parts.append(f"{round(amount):,} {stake.label}")
    systems = getattr(candidate, "systems", 0)
    parts.append(f"{systems} system{'s' if systems != 1 else ''}")
    return parts


def _verdict_label(verdict: str) -> str:
    return "merge" if verdict == Verdict.MATCH else "mark not a match"


class QueueView(StewardView):
    template_name = "stewardship/queue.html"
    title = "Review queue"
    section = "queue"
    actions = ("bulk_merge", "bulk_not_a_match", "assign", "unassign")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = desk_query(self.request.GET)
        filters = query.filters
        if query.mine:
            filters = replace(filters, condition=assigned_to(steward_of(self.request)))
        # RankedQueue pages by count and slices, all Django's paginator uses of it
        paginator: Paginator[MatchCandidate] = Paginator(RankedQueue(filters), PAGE_SIZE)  # type: ignore[arg-type]
        page = paginator.get_page(self.request.GET.get("page"))
        candidates = list(page.object_list)
        work = work_on([c.pk for c in candidates])
        for candidate in candidates:  # what the row shows besides the candidate's own fields
            setattr(candidate, "work", work[candidate.pk])  # noqa: B010
            setattr(candidate, "stakes", stakes_of(candidate))  # noqa: B010
        context.update(
            query=query,
            filters=query.filters,
            filter_query=query.encoded(),
            page=page,
            candidates=candidates,
            claim_minutes=settings.KEYSTONE_CLAIM_MINUTES,
            entities=list(ENTITIES),
            systems=SourceSystem.objects.values_list("code", flat=True),
            bands=PROBABILITY_BANDS,
            ages=AGE_BANDS,
            stewards=stewards(),
            skipped_count=len(skipped(self.request)),
            mine_count=my_queue_count(steward_of(self.request)),
            approvals_waiting=approvals_waiting(),
            four_eyes_size=settings.KEYSTONE_FOUR_EYES_BULK_SIZE,
        )
        return context

    def _chosen(self, request, query: DeskQuery) -> list[MatchCandidate]:
        """The candidates a bulk action applies to: the selected rows or everything matching
        the filters (highest priority first, at most BULK_LIMIT), never one another steward
        holds (claimed, assigned, waiting for approval)."""
        condition = free_for(steward_of(request))
        if query.mine:
            condition &= assigned_to(steward_of(request))
        queue = review_queue(replace(query.filters, condition=condition))
        if request.POST.get("scope") != "all":
            ids = ids_from(request.POST.getlist("selected"))
            queue = queue.filter(pk__in=ids)
        return list(queue[:BULK_LIMIT])

    def _bulk(self, request, verdict: str):
        query = desk_query(request.GET)
        everything = request.POST.get("scope") == "all"
        if everything and request.POST.get("confirmed") != "1":
            return self._confirm(request, query, verdict)
        chosen = self._chosen(request, query)
        if not chosen:
            messages.warning(request, "Select at least one candidate.")
            return HttpResponseRedirect(request.get_full_path())
        if everything and str(len(chosen)) != request.POST.get("count"):
            messages.warning(request, "The queue changed since you confirmed: check the count.")
            return self._confirm(request, query, verdict)
        reason = reason_from(request, f"bulk: {verdict}")
        if not reserve_bulk(steward=steward_of(request), size=len(chosen), verdict=verdict):
            described_as = (
                f"all {len(chosen)} matching {query.encoded() or 'no filter'}"
                if everything
                else f"{len(chosen)} selected"
            )
            filed = request_approval(
                kind=ApprovalKind.BULK,
                candidates=chosen,
                verdict=verdict,
                reason=reason_from(request),
                description=f"{_verdict_label(verdict)}: {described_as}",
                steward=steward_of(request),
            )
            messages.info(
                request,
                f"{len(chosen)} decisions wait for a second steward's approval "
                f"(request #{filed.pk}): more than {settings.KEYSTONE_FOUR_EYES_BULK_SIZE} "
                f"in {settings.KEYSTONE_FOUR_EYES_WINDOW_MINUTES} minutes need four eyes.",
            )
            return HttpResponseRedirect(request.get_full_path())
        outcome = decide_many(
            candidates=chosen, verdict=verdict, actor=steward_of(request), reason=reason
        )
        label = "merged" if verdict == Verdict.MATCH else "marked not a match"
        messages.success(request, f"{outcome.decided} candidate(s) {label}.")
        for error in outcome.errors[:10]:
            messages.error(request, error)
        return HttpResponseRedirect(request.get_full_path())

    def _confirm(self, request, query: DeskQuery, verdict: str):
        """Everything matching the filters: say how many first, and ask."""
        condition = free_for(steward_of(request))
        if query.mine:
            condition &= assigned_to(steward_of(request))
        total = RankedQueue(replace(query.filters, condition=condition)).count()
        deciding = min(total, BULK_LIMIT)
        context = self.get_context_data()
        context.update(
            confirm={
                "action": request.POST.get("action"),
                "verdict_label": _verdict_label(verdict),
                "total": total,
                "deciding": deciding,
                "reason": request.POST.get("reason", ""),
                "needs_approval": bulk_needs_approval(deciding, steward=steward_of(request)),
            }
        )
        return self.render_to_response(context)

    def do_bulk_merge(self, request):
        return self._bulk(request, Verdict.MATCH)

    def do_bulk_not_a_match(self, request):
        return self._bulk(request, Verdict.NOT_A_MATCH)

    def do_assign(self, request):
        assignee = stewards().filter(pk=posted_id(request, "assignee") or 0).first()
        if assignee is None:
            raise InvalidResolution("choose a steward to assign the candidates to")
        chosen = self._chosen(request, desk_query(request.GET))
        count = assign(
            candidate_ids=[c.pk for c in chosen], assignee=assignee, actor=steward_of(request)
        )
        messages.success(request, f"{count} candidate(s) assigned to {assignee.get_username()}.")
        return HttpResponseRedirect(request.get_full_path())

    def do_unassign(self, request):
        chosen = self._chosen(request, desk_query(request.GET))
        count = unassign(candidate_ids=[c.pk for c in chosen], actor=steward_of(request))
        messages.success(request, f"{count} candidate(s) back in the shared queue.")
        return HttpResponseRedirect(request.get_full_path())


class NextCandidateView(StewardView):
    """Open (and claim) the highest-priority candidate this steward may take up: skipped
    ones, and those claimed by or assigned to other stewards, are passed over."""

    def get(self, request, *args, **kwargs):
        query = desk_query(request.GET)
        filters = replace(query.filters, exclude_ids=skipped(request))
        ahead = next_for(steward_of(request), filters, mine_only=query.mine)
        if ahead is None:
            messages.info(request, "No more open candidates for these filters.")
            return HttpResponseRedirect(queue_url(query))
        return HttpResponseRedirect(candidate_url(ahead.pk, query))


@dataclass
class ComparedAttribute:
    name: str
    label: str
    left: Any
    right: Any
    tone: str  # the model's reading: same | close | differ | none | unread (not compared)
    level: str = ""


def compare(candidate: MatchCandidate, explained: dict) -> list[ComparedAttribute]:
    """Both records field by field, each coloured by how the model's comparison covering it
    read the pair (`matching.explain.field_readings`), not by string equality. Fields no
    comparison reads are "unread"; fields empty on both sides are left out."""
    entity = get_entity(candidate.entity_type)
    readings = field_readings(candidate.entity_type, explained)
    rows = []
    labels = {a.name: a.verbose_name for a in entity.attributes}
    labels |= {r.column: r.relation for r in entity.references}
    for name in entity.survived_fields:
        left = candidate.left.attributes.get(name, candidate.left.references.get(name))
        right = candidate.right.attributes.get(name, candidate.right.references.get(name))
        if left in (None, "") and right in (None, ""):
            continue
        reading = readings.get(name)
        tone = reading.tone if reading else "unread"
        level = reading.label if reading else "not compared by the model"
        rows.append(ComparedAttribute(name, labels[name], left, right, tone, level))
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


GOLDEN_RELATIONS = tuple(
    f"{side}_golden__{relation}"
    for side in ("left", "right")
    for relation in GoldenRecord.RELATION_FIELDS
)


class CandidateView(StewardView):
    """A candidate is a pair of golden records: both side by side (survived values with
    lineage, every member, relations), the record a merge would make, and the evidence —
    the best-scoring pair of their records, explained, and every other scored pair."""

    template_name = "stewardship/candidate.html"
    section = "queue"
    actions = ("merge", "not_a_match", "skip")

    def get_candidate(self) -> MatchCandidate:
        """The candidate with everything the page shows, joined — but the model's settings,
        read once per process (`stored_settings`)."""
        return get_object_or_404(
            MatchCandidate.objects.select_related(
                "left__source_system",
                "right__source_system",
                "left_golden",
                "right_golden",
                *GOLDEN_RELATIONS,
                "model",
                "run",
            ).defer("model__settings", "model__training_report", "model__diff"),
            pk=self.kwargs["pk"],
        )

    def get_title(self) -> str:
        return f"Match candidate #{self.kwargs['pk']}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        candidate = self.get_candidate()
        query = desk_query(self.request.GET)
        is_open = candidate.status == CandidateStatus.OPEN
        holder = None
        if is_open and self.request.user.has_perm(permission_for("merge")):
            try:
                claim(candidate_id=candidate.pk, steward=steward_of(self.request))
            except CandidateClaimed:
                holder = claim_holder(candidate.pk)
        model = candidate.model
        model_settings = stored_settings(model.pk, model.trained_at) if model else None
        explained = described(candidate.explanation or {}, model_settings)
        readings = field_readings(candidate.entity_type, explained)
        page = candidate_page(candidate, {name: r.tone for name, r in readings.items()})
        chart = weight_chart(
            candidate.entity_type,
            explained,
            prior=prior_weight(model_settings),
            match_weight=candidate.match_weight,
        )
        pair = sorted((candidate.left_id, candidate.right_id))
        decisions = list(
            MatchDecision.objects.filter(
                Q(candidate=candidate) | Q(left_id=pair[0], right_id=pair[1])
            ).select_related("decided_by")[:5]
        )
        members = {
            side.golden.pk: [summary.record for summary in side.members]
            for side in (page.left, page.right)
        }
        context.update(
            candidate=candidate,
            page=page,
            sides=(page.left, page.right),
            is_open=is_open,
            held_by=holder,
            conflict=conflict_of(candidate),
            rows=compare(candidate, explained),
            chart=chart,
            pairs=listed_pairs(candidate, members),
            decisions=decisions,
            query=query,
            filters=query.filters,
            filter_query=query.encoded(),
        )
        return context

    def _decide(self, request, verdict: str, done: str):
        candidate = get_object_or_404(MatchCandidate, pk=self.kwargs["pk"])
        made = decide_candidate(
            candidate=candidate,
            verdict=verdict,
            steward=steward_of(request),
            reason=reason_from(request),
        )
        if isinstance(made, ApprovalRequest):
            messages.info(
                request,
                f"Candidate #{candidate.pk}: the merge overrides “{conflict_of(candidate)}” and "
                f"waits for a second steward's approval (request #{made.pk}).",
            )
        else:
            messages.success(request, f"Candidate #{candidate.pk}: {done}.")
        return HttpResponseRedirect(next_url(desk_query(request.GET)))

    def do_merge(self, request, pk):
        return self._decide(request, Verdict.MATCH, "merged")

    def do_not_a_match(self, request, pk):
        return self._decide(request, Verdict.NOT_A_MATCH, "marked not a match")

    def do_skip(self, request, pk):
        seen = [i for i in skipped(request) if i != pk][-SKIPPED_LIMIT + 1 :]
        request.session[SKIPPED_KEY] = [*seen, pk]
        release(candidate_id=pk, steward=steward_of(request))
        messages.info(request, f"Candidate #{pk} skipped for this session.")
        return HttpResponseRedirect(next_url(desk_query(request.GET)))
