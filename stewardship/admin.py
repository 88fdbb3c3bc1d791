"""Admin extensions: the stewardship entry on the admin index, and the accuracy samples."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from mdm.admin import ReadOnlyMixin
from stewardship.models import AutoLinkSample

admin.site.index_template = "stewardship/admin_index.html"
admin.site.site_url = "/"  # "View site" lands on the home page (stewardship.views.home)


@admin.register(AutoLinkSample)
class AutoLinkSampleAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = (
        "id",
        "entity_type",
        "record",
        "golden_id",
        "link_probability",
        "verdict",
        "reviewed_by",
        "reviewed_at",
    )
    list_filter = ("entity_type", "verdict")
    list_select_related = ("record__source_system", "reviewed_by")
