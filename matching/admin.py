import json

from django.contrib import admin
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from matching.models import MatchCandidate, MatchDecision, MatchModel, MatchRun
from mdm.admin import ReadOnlyMixin


def _pretty(value) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, default=str),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MatchModel)
class MatchModelAdmin(ReadOnlyAdmin):
    list_display = ("entity_type", "version", "is_active", "trained_at")
    list_filter = ("entity_type", "is_active")
    readonly_fields = ("report", "model_settings")
    exclude = ("settings", "training_report")

    @admin.display(description="training report")
    def report(self, obj):
        return _pretty(obj.training_report)

    @admin.display(description="Splink model")
    def model_settings(self, obj):
        return _pretty(obj.settings)


@admin.register(MatchRun)
class MatchRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "entity_type",
        "status",
        "phase",
        "records",
        "pairs_scored",
        "merges",
        "sent_to_review",
        "goldens_before",
        "goldens_after",
        "started_at",
        "finished_at",
    )
    list_filter = ("entity_type", "status")


@admin.register(MatchCandidate)
class MatchCandidateAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "entity_type",
        "left_golden",
        "right_golden",
        "left",
        "right",
        "probability",
        "reason",
        "status",
    )
    list_filter = ("entity_type", "status")
    list_select_related = (
        "left_golden",
        "right_golden",
        "left__source_system",
        "right__source_system",
    )
    readonly_fields = ("explained",)
    exclude = ("explanation",)

    @admin.display(description="explanation")
    def explained(self, obj):
        return _pretty(obj.explanation)


@admin.register(MatchDecision)
class MatchDecisionAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = (
        "id",
        "entity_type",
        "left",
        "right",
        "verdict",
        "origin",
        "actor",
        "is_current",
        "created_at",
    )
    list_filter = ("entity_type", "verdict", "origin", "is_current")
    list_select_related = ("left__source_system", "right__source_system")
    search_fields = ("reason", "actor")
