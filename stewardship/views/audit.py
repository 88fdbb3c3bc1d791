"""Audit log: every history row of golden records, source records, decisions, rules, pins
and accuracy samples — who, when, why, and what changed."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.http import urlencode

from stewardship.selectors import audit_page, audit_sources
from stewardship.views.base import StewardView

KINDS = {
    "golden": "Golden records",
    "source": "Source records",
    "decision": "Decisions",
    "rule": "Rules",
    "pin": "Pins",
    "sample": "Accuracy samples",
}


class AuditView(StewardView):
    template_name = "stewardship/audit.html"
    title = "Audit log"
    section = "audit"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        kind = self.request.GET.get("kind", "golden")
        kind = kind if kind in KINDS else "golden"
        who = self.request.GET.get("who", "").strip()
        manager, _ = audit_sources()[kind]
        rows = manager.select_related("history_user").order_by("-history_date", "-history_id")
        if who:
            rows = rows.filter(actor__icontains=who)
        paginator = Paginator(rows, 50)
        page = paginator.get_page(self.request.GET.get("page"))
        context.update(
            kinds=KINDS,
            kind=kind,
            who=who,
            page=page,
            entries=audit_page(kind, list(page.object_list)),
            filter_query=urlencode({k: v for k, v in (("kind", kind), ("who", who)) if v}),
        )
        return context
