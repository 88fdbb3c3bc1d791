"""Who may do what. The one place that holds the API's access rules.

- integration (bearer token): what its scopes allow (`api.scopes`): each view declares the
  one scope it needs (`required_scope`; `NO_SCOPE` for one any token may call); a view that
  declares none is closed to tokens.
  `sources:write` writes source records of the token's own source system only, and
  `webhooks:manage` manages its own subscriptions only;
- steward (group "steward", or a superuser): everything;
- auditor (group "auditor"): reads only;
- any other signed-in user: nothing (403); nobody signed in: 401.

Views also declare `read_only_post = True` for POSTs that change nothing (lookups, probes),
which auditors may send. What a reader sees of sensitive attributes is `api.scopes`' rule.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission

from api.models import IntegrationToken, WebhookSubscription
from api.scopes import NO_SCOPE, SOURCES_WRITE

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
        if role == STEWARD:
            return True
        if role == AUDITOR:
            return request.method in SAFE_METHODS or getattr(view, "read_only_post", False)
        scope = getattr(view, "required_scope", None)
        if scope == NO_SCOPE:
            return True
        if scope is None or scope not in request.auth.scope_set:
            self.message = (
                f"This token lacks the {scope!r} scope."
                if scope
                else "Integration tokens cannot use this endpoint."
            )
            return False
        if scope == SOURCES_WRITE:
            own = request.auth.source_system.code
            if view.kwargs.get("system", "").lower() != own:
                self.message = (
                    f"This token writes only {own!r} source records, "
                    f"not {view.kwargs.get('system')!r}."
                )
                return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if isinstance(obj, WebhookSubscription) and role_of(request) == INTEGRATION:
            return obj.owner_id == request.auth.source_system_id
        return True
