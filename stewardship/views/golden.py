"""Golden record pages: search, the record with lineage and actions, history, "as of"."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.http import urlencode

from mdm.entities import ENTITIES
from mdm.errors import GoldenRecordNotFound, InvalidResolution
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.selectors import (
    golden_as_of,
    identifier_conflict,
    merge_preview,
    resolve_golden,
    split_preview,
    xrefs_as_of,
)
from mdm.services.pins import pin_value, unpin_value
from mdm.services.resolution import split
from mdm.spreadsheets import csv_writer
from stewardship.models import ApprovalRequest
from stewardship.selectors import (
    golden_page,
    golden_timeline,
    merge_targets,
    preview_rows,
    with_conflicts,
)
from stewardship.teamwork import merge_goldens
from stewardship.views.base import StewardView, reason_from


def golden_url(golden_id: str) -> str:
    return reverse("stewardship:golden", args=[golden_id])


STATUS_FILTERS = {
    GoldenStatus.ACTIVE: "active",
    GoldenStatus.MERGED: "merged",
    GoldenStatus.RETIRED: "retired",
    "any": "any status",
}


class GoldenListView(StewardView):
    """Active golden records by default (what a steward works on); the status filter shows
    merged (each with the record it was merged into) and retired ones."""

    template_name = "stewardship/golden_list.html"
    title = "Golden records"
    section = "golden_list"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        entity = params.get("entity") if params.get("entity") in ENTITIES else ""
        query = params.get("q", "").strip()
        conflicts = params.get("conflicts") == "1"
        status = params.get("status") if params.get("status") in STATUS_FILTERS else ""
        status = status or GoldenStatus.ACTIVE
        if conflicts:
            goldens = with_conflicts()
        elif status == "any":
            goldens = GoldenRecord.objects.all()
        else:
            goldens = GoldenRecord.objects.filter(status=status)
        if entity:
            goldens = goldens.filter(entity_type=entity)
        if query:
            goldens = goldens.filter(Q(pk__istartswith=query) | Q(display_name__icontains=query))
        goldens = goldens.only(
            "id", "entity_type", "display_name", "status", "merged_into_id", "updated_at"
        )
        paginator = Paginator(goldens.order_by("-updated_at", "id"), 50)
        page = paginator.get_page(params.get("page"))
        keep = {k: v for k, v in (("entity", entity), ("q", query)) if v}
        if status != GoldenStatus.ACTIVE:
            keep["status"] = status
        if conflicts:
            keep["conflicts"] = "1"
        context.update(
            page=page,
            entities=list(ENTITIES),
            entity=entity,
            query=query,
            conflicts=conflicts,
            status=status,
            statuses=STATUS_FILTERS,
            filter_query=urlencode(keep),
        )
        return context


class GoldenView(StewardView):
    template_name = "stewardship/golden.html"
    section = "golden_list"
    actions = ("split", "pin", "unpin", "merge_golden")

    def dispatch(self, request, *args, **kwargs):
        try:
            golden, chain = resolve_golden(kwargs["golden_id"])
        except GoldenRecordNotFound:
            raise Http404("no such golden record") from None
        if chain and request.method == "GET":
            messages.info(request, f"{kwargs['golden_id']} was merged into {golden.pk}.")
            return HttpResponseRedirect(golden_url(golden.pk))
        self.golden = golden
        return super().dispatch(request, *args, **kwargs)

    def get_title(self) -> str:
        return f"{self.golden.entity_type.title()} {self.golden.pk}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = golden_page(self.golden.pk)
        params = self.request.GET
        merge_query = params.get("merge_q", "")
        context.update(
            page=page,
            golden=page.golden,
            entity=page.golden.entity,
            is_active=page.golden.status == GoldenStatus.ACTIVE,
            merge_query=merge_query,
            merge_results=merge_targets(page.golden, merge_query),
            now=timezone.now(),
        )
        context.update(self._merge_preview(page.golden, params.get("merge_preview", "")))
        context.update(self._split_preview(page, params))
        return context

    def _merge_preview(self, golden: GoldenRecord, other_id: str) -> dict:
        """ "Merge with…": the record this one would become, before the Merge button."""
        other = GoldenRecord.objects.filter(
            pk=other_id, entity_type=golden.entity_type, status=GoldenStatus.ACTIVE
        ).first()
        if other is None or other.pk == golden.pk:
            return {}
        preview = merge_preview(golden, other)
        return {
            "merge_other": other,
            "merge_preview": preview,
            "merge_rows": preview_rows(golden.entity_type, preview, golden, other),
            "merge_heads": [f"{golden.pk} now", f"{other.pk} now"],
            "merge_conflict": identifier_conflict(golden.entity_type, golden.pk, other.pk),
        }

    def _split_preview(self, page, params) -> dict:
        """The two records a split of the chosen members would leave and create."""
        if params.get("preview_split") != "1":
            return {}
        members = {m.pk for m in page.members}
        chosen = [int(i) for i in params.getlist("members") if i.isdigit() and int(i) in members]
        if not chosen:
            return {"split_problem": "Choose the members to split out first."}
        if not [m for m in page.members if m.pk not in chosen and not m.deleted]:
            return {"split_problem": "A split must leave at least one live member behind."}
        staying, leaving = split_preview(page.golden, chosen)
        entity_type = page.golden.entity_type
        return {
            "split_chosen": chosen,
            "split_staying": staying,
            "split_leaving": leaving,
            "split_staying_rows": preview_rows(entity_type, staying, page.golden),
            "split_leaving_rows": preview_rows(entity_type, leaving, page.golden),
            "split_heads": [f"{page.golden.pk} now"],
        }

    def _back(self, request):
        return HttpResponseRedirect(golden_url(self.golden.pk))

    def do_split(self, request, golden_id):
        ids = [int(i) for i in request.POST.getlist("members") if i.isdigit()]
        records = list(SourceRecord.objects.filter(golden=self.golden, pk__in=ids))
        created = split(
            golden=self.golden,
            records=records,
            actor=request.user,
            reason=reason_from(request, "steward: split"),
        )
        messages.success(
            request,
            f"Split {len(records)} source record(s) out into new golden record {created.pk}.",
        )
        return self._back(request)

    def do_pin(self, request, golden_id):
        attribute = request.POST.get("attribute", "")
        pin_value(
            golden=self.golden,
            attribute=attribute,
            value=request.POST.get("value", ""),
            actor=request.user,
            reason=reason_from(request),
        )
        messages.success(request, f"Pinned {attribute}.")
        return self._back(request)

    def do_unpin(self, request, golden_id):
        attribute = request.POST.get("attribute", "")
        unpin_value(
            golden=self.golden,
            attribute=attribute,
            actor=request.user,
            reason=reason_from(request, "steward: unpin"),
        )
        messages.success(request, f"Unpinned {attribute}.")
        return self._back(request)

    def do_merge_golden(self, request, golden_id):
        other_id = request.POST.get("other", "")
        other = GoldenRecord.objects.filter(pk=other_id).first()
        if other is None:
            raise InvalidResolution(f"no golden record {other_id!r}")
        made = merge_goldens(
            survivor=self.golden,
            loser=other,
            steward=request.user,
            reason=reason_from(request),
        )
        if isinstance(made, ApprovalRequest):
            messages.warning(
                request,
                f"{made.description}: filed for a second steward's approval (#{made.pk}); "
                "nothing merged yet.",
            )
        else:
            messages.success(request, f"Merged {other.pk} into {self.golden.pk}.")
        return self._back(request)


class GoldenHistoryView(StewardView):
    template_name = "stewardship/golden_history.html"
    section = "golden_list"

    def get_title(self) -> str:
        return f"History of {self.kwargs['golden_id']}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        golden_id = self.kwargs["golden_id"]
        if not GoldenRecord.objects.filter(pk=golden_id).exists():
            raise Http404("no such golden record")
        context.update(golden_id=golden_id, entries=golden_timeline(golden_id))
        return context


class GoldenHistoryCsvView(StewardView):
    def get(self, request, golden_id):
        if not GoldenRecord.objects.filter(pk=golden_id).exists():
            raise Http404("no such golden record")
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{golden_id}-history.csv"'
        writer = csv_writer(response)
        writer.writerow(
            [
                "when",
                "kind",
                "object",
                "action",
                "who",
                "why",
                "field",
                "old",
                "new",
                "correlation_id",
            ]
        )
        for entry in golden_timeline(golden_id):
            base = [entry.when.isoformat(), entry.kind, entry.object_label, entry.action]
            base += [entry.who, entry.why]
            changed = [[c.field, c.old, c.new] for c in entry.changes] or [["", "", ""]]
            for fields in changed:
                writer.writerow([*base, *fields, entry.correlation_id])
        return response


def parse_moment(text: str):
    """A datetime from a form field: ISO datetime, datetime-local or a date (end of day)."""
    text = (text or "").strip()
    moment = parse_datetime(text)
    if moment is None and (day := parse_date(text)):
        moment = parse_datetime(f"{day.isoformat()}T23:59:59.999999")
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class GoldenAsOfView(StewardView):
    template_name = "stewardship/golden_as_of.html"
    section = "golden_list"

    def get_title(self) -> str:
        return f"{self.kwargs['golden_id']} as of a date"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        golden_id = self.kwargs["golden_id"]
        current = GoldenRecord.objects.filter(pk=golden_id).first()
        if current is None:
            raise Http404("no such golden record")
        moment = parse_moment(self.request.GET.get("at", "")) or timezone.now()
        snapshot = golden_as_of(golden_id, moment)
        values = sorted(snapshot.values.items()) if snapshot else []
        context.update(
            golden_id=golden_id,
            current=current,
            moment=moment,
            at_value=timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M:%S"),
            snapshot=snapshot,
            values=values,
            xrefs=xrefs_as_of(golden_id, moment) if snapshot else [],
        )
        return context
