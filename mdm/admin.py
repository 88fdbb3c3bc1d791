"""Admin registration for every core model, with history views.

Golden records and source records are read-only here: they change only through the services
(ingest, link/merge/split, pins). The full stewardship workflow is its own app.
"""

import json

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from mdm.models import (
    GOLDEN_PROXIES,
    GoldenRecord,
    IngestRejection,
    OutboxEvent,
    RejectionStatus,
    SourceMapping,
    SourceRecord,
    SourceSystem,
    StewardOverride,
    SurvivorshipRule,
)
from mdm.services.rejections import replay_rejections

admin.site.site_header = "Keystone MDM"
admin.site.site_title = "Keystone"
admin.site.index_title = "Master data"


def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, default=str),
    )


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SourceSystem)
class SourceSystemAdmin(SimpleHistoryAdmin):
    list_display = ("code", "name", "trust_rank", "created_at")
    search_fields = ("code", "name")
    ordering = ("trust_rank", "code")


class MemberInline(admin.TabularInline):
    model = SourceRecord
    fk_name = "golden"
    fields = (
        "source_system",
        "source_key",
        "link_method",
        "link_probability",
        "deleted",
        "linked_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("source_system")


class GoldenRecordAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("id", "display_name", "entity_type", "status", "merged_into", "updated_at")
    list_filter = ("status",)
    search_fields = ("id", "display_name")
    list_select_related = ("merged_into",)
    readonly_fields = (
        "id",
        "entity_type",
        "status",
        "merged_into",
        "display_name",
        "survived_values",
        "lineage_table",
        "parent",
        "customer",
        "contract",
        "product",
        "created_at",
        "updated_at",
    )
    exclude = ("values", "lineage")
    inlines = [MemberInline]
    show_full_result_count = False

    @admin.display(description="values")
    def survived_values(self, obj):
        return pretty_json(obj.values)

    @admin.display(description="lineage")
    def lineage_table(self, obj):
        rows = [
            (
                name,
                entry.get("value"),
                entry.get("rule"),
                f"{entry.get('system') or '—'}:{entry.get('source_key') or '—'}",
                ", ".join(str(r.get("value")) for r in entry.get("runner_ups", [])) or "—",
            )
            for name, entry in sorted(obj.lineage.items())
        ]
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            "<table><thead><tr><th>field</th><th>value</th><th>rule</th><th>from</th>"
            "<th>beat</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )


for _entity_type, _proxy in GOLDEN_PROXIES.items():
    admin.site.register(_proxy, GoldenRecordAdmin)


@admin.register(SourceRecord)
class SourceRecordAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = (
        "source_key",
        "entity_type",
        "source_system",
        "golden",
        "link_method",
        "deleted",
        "has_flags",
        "updated_at",
    )
    list_filter = ("entity_type", "source_system", "link_method", "deleted")
    search_fields = ("source_key", "golden__id")
    list_select_related = ("source_system", "golden")
    readonly_fields = (
        "entity_type",
        "source_system",
        "source_key",
        "golden",
        "link_method",
        "link_probability",
        "linked_at",
        "source_updated_at",
        "received_at",
        "updated_at",
        "deleted",
        "deleted_at",
        "payload_hash",
        "raw_payload",
        "canonical",
        "keys",
        "flagged",
        "extra_fields",
        "reference_keys",
    )
    exclude = ("raw", "attributes", "match_keys", "invalid", "extra", "references")
    show_full_result_count = False

    @admin.display(boolean=True, description="flagged")
    def has_flags(self, obj):
        return bool(obj.invalid)

    @admin.display(description="raw payload")
    def raw_payload(self, obj):
        return pretty_json(obj.raw)

    @admin.display(description="canonical values")
    def canonical(self, obj):
        return pretty_json(obj.attributes)

    @admin.display(description="match keys")
    def keys(self, obj):
        return pretty_json(obj.match_keys)

    @admin.display(description="flagged values (kept raw)")
    def flagged(self, obj):
        return pretty_json(obj.invalid)

    @admin.display(description="extra fields")
    def extra_fields(self, obj):
        return pretty_json(obj.extra)

    @admin.display(description="references")
    def reference_keys(self, obj):
        return pretty_json(obj.references)


@admin.register(SurvivorshipRule)
class SurvivorshipRuleAdmin(SimpleHistoryAdmin):
    list_display = ("entity_type", "attribute", "strategy", "system_order", "updated_at")
    list_filter = ("entity_type", "strategy")


@admin.register(SourceMapping)
class SourceMappingAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    """Versions are read here; a new version is written on the steward's mapping page (with
    its preview) or through the API, both checked by the mapping language."""

    list_display = (
        "source_system",
        "entity_type",
        "version",
        "active",
        "note",
        "created_by",
        "created_at",
    )
    list_filter = ("entity_type", "active", "source_system")
    list_select_related = ("source_system",)


@admin.register(StewardOverride)
class StewardOverrideAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("golden", "attribute", "value", "reason", "pinned_by", "created_at")
    search_fields = ("golden__id", "attribute")
    list_select_related = ("golden", "pinned_by")


@admin.register(IngestRejection)
class IngestRejectionAdmin(SimpleHistoryAdmin):
    list_display = (
        "id",
        "source_system",
        "entity_type",
        "origin",
        "line_number",
        "source_key",
        "reason",
        "status",
        "created_at",
    )
    list_filter = ("status", "source_system", "entity_type")
    search_fields = ("source_key", "reason", "origin")
    readonly_fields = (
        "entity_type",
        "source_system",
        "origin",
        "line_number",
        "reason",
        "status",
        "created_at",
        "resolved_at",
    )
    fields = ("payload", *readonly_fields)
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(
        description="Replay selected rejections (after fixing the payload)", permissions=["change"]
    )
    def replay(self, request, queryset):
        counts = replay_rejections(
            rejections=list(queryset.filter(status=RejectionStatus.OPEN)), actor=request.user
        )
        self.message_user(
            request,
            f"replayed {counts['replayed']}, still rejected {counts['still_rejected']}",
            messages.SUCCESS if not counts["still_rejected"] else messages.WARNING,
        )


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "event_type", "entity_type", "golden_id", "actor", "created_at")
    list_filter = ("event_type", "entity_type")
    search_fields = ("golden_id", "correlation_id")
    readonly_fields = ("event_payload",)
    exclude = ("payload",)
    show_full_result_count = False

    @admin.display(description="payload")
    def event_payload(self, obj):
        return pretty_json(obj.payload)


__all__ = ["GoldenRecordAdmin", "GoldenRecord"]
