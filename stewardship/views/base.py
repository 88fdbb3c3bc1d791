"""The one place that enforces roles for every stewardship page.

Pages are admin views (`admin.site.admin_view`: staff login, the admin's look). Reading needs
`stewardship.browse`; a POST names an `action`, and `roles.permission_for(action)` says which
permission it needs — without it the answer is 403, whatever the action. Templates receive
`can` (action -> allowed) so buttons appear only for those who may press them.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseRedirect
from django.views.generic import TemplateView

from mdm.errors import MdmError
from stewardship.roles import ACTION_PERMISSIONS, BROWSE, permission_for

SECTIONS = (
    ("dashboard", "Dashboard"),
    ("queue", "Review queue"),
    ("golden_list", "Golden records"),
    ("rules", "Survivorship rules"),
    ("accuracy", "Live accuracy"),
    ("models", "Models & runs"),
    ("audit", "Audit log"),
    ("integrations", "Integrations"),
)


class Can(dict):
    """action -> allowed, readable in templates as `can.merge`."""

    def __missing__(self, key):
        return False


def can_for(user) -> Can:
    return Can({action: user.has_perm(perm) for action, perm in ACTION_PERMISSIONS.items()})


class StewardView(TemplateView):
    title = ""
    section = ""
    # POST actions this page handles: action -> method name.
    actions: tuple[str, ...] = ()

    @classmethod
    def as_admin_view(cls, **initkwargs):
        return admin.site.admin_view(cls.as_view(**initkwargs))

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm(BROWSE):
            raise PermissionDenied
        if request.method == "POST" and not request.user.has_perm(
            permission_for(request.POST.get("action", ""))
        ):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        action = request.POST.get("action", "")
        if action not in self.actions:
            return HttpResponseBadRequest(f"unknown action {action!r}")
        try:
            return getattr(self, f"do_{action}")(request, *args, **kwargs)
        except MdmError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(request.get_full_path())

    def get_title(self) -> str:
        return self.title

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context.update(
            title=self.get_title(),
            is_nav_sidebar_enabled=False,
            sections=SECTIONS,
            section=self.section,
            can=can_for(self.request.user),
        )
        return context


def steward_of(request: HttpRequest) -> User:
    """The signed-in person acting (admin views let nobody else in)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def reason_from(request, default: str = "") -> str:
    return (request.POST.get("reason") or "").strip() or default
