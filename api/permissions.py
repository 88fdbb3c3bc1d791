"""Who may do what. The one place that holds the API's access rules.

- integration (bearer token): reads everything; writes source records of its own source
  system only, and manages its own webhook subscriptions;
- steward (group "steward", or a superuser): everything;
- auditor (group "auditor"): reads only;
- any other signed-in user: nothing (403); nobody signed in: 401.

Views declare what they are: `write_scope = "source"` (path has a `system`), `"webhooks"`,
or `"steward"`; `read_only_post = True` for POSTs that change nothing (lookups, probes).
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission

from api.models import IntegrationToken, WebhookSubscription

INTEGRATION, STEWARD, AUDITOR = "integration", "steward", "auditor"


def role_of(request) -> str | None:
    if hasattr(request, "_keystone_role"):
        return request._keystone_role
    role = None
    user = getattr(request, "user", None)
    if isinstance(request.auth, IntegrationToken):
        role = INTEGRATION
    elif user is not None and user.is_authenticated and user.is_active:
        if user.is_superuser:
            role = STEWARD
        else:
            groups = set(user.groups.values_list("name", flat=True))
            role = STEWARD if STEWARD in groups else AUDITOR if AUDITOR in groups else None
    request._keystone_role = role
    return role


def actor_for(request):
    """The actor recorded in history and events: `integration:CODE` or the steward."""
    if isinstance(request.auth, IntegrationToken):
        return request.auth.actor
    return request.user


def visible_subscriptions(request, queryset: QuerySet) -> QuerySet:
    if role_of(request) == INTEGRATION:
        return queryset.filter(owner_id=request.auth.source_system_id)
    return queryset


class KeystoneAccess(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        role = role_of(request)
        if role is None:
            return False
        reading = request.method in SAFE_METHODS or getattr(view, "read_only_post", False)
        if role == STEWARD:
            return True
        if role == AUDITOR:
            return reading
        if reading:
            return True
        scope = getattr(view, "write_scope", None)
        if scope == "source":
            own = request.auth.source_system.code
            if view.kwargs.get("system", "").lower() != own:
                self.message = (
                    f"This token writes only {own!r} source records, "
                    f"not {view.kwargs.get('system')!r}."
                )
                return False
            return True
        return scope == "webhooks"

    def has_object_permission(self, request, view, obj) -> bool:
        if isinstance(obj, WebhookSubscription) and role_of(request) == INTEGRATION:
            return obj.owner_id == request.auth.source_system_id
        return True
