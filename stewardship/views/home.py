"""The home page at `/`: where a signed-in person starts (the steward desk, the API docs,
health) and where the admin's "View site" lands. Anyone else is sent to sign in."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase
from django.views.generic import TemplateView

from matching.selectors import open_candidate_count
from mdm.models import GoldenRecord, GoldenStatus
from stewardship.roles import BROWSE


class HomeView(TemplateView):
    template_name = "stewardship/home.html"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), login_url="admin:login")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        may_browse = self.request.user.has_perm(BROWSE)
        context.update(
            title="Keystone MDM",
            is_nav_sidebar_enabled=False,
            may_browse=may_browse,
            open_candidates=open_candidate_count() if may_browse else None,
            active_goldens=(
                GoldenRecord.objects.filter(status=GoldenStatus.ACTIVE).count()
                if may_browse
                else None
            ),
        )
        return context
