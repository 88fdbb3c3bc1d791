"""The two roles and the one table that says which permission every steward action needs.

Every stewardship view looks up `ACTION_PERMISSIONS` before running a POST (see
`stewardship.views.base.StewardView`) and templates show an action's button only when the
user holds its permission — so an auditor sees no buttons and gets 403 on any POST.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

BROWSE = "stewardship.browse"

# POST action -> the permission it needs. An action missing here is refused (403).
ACTION_PERMISSIONS: dict[str, str] = {
    "merge": "stewardship.decide_candidate",
    "not_a_match": "stewardship.decide_candidate",
    "skip": "stewardship.decide_candidate",
    "bulk_merge": "stewardship.decide_candidate",
    "bulk_not_a_match": "stewardship.decide_candidate",
    "assign": "stewardship.decide_candidate",
    "unassign": "stewardship.decide_candidate",
    "approve": "stewardship.decide_candidate",
    "reject_request": "stewardship.decide_candidate",
    "merge_golden": "stewardship.merge_golden",
    "split": "stewardship.split_golden",
    "pin": "stewardship.pin_value",
    "unpin": "stewardship.pin_value",
    "preview_rule": "stewardship.edit_rules",
    "save_rule": "stewardship.edit_rules",
    "draw_sample": "stewardship.review_sample",
    "confirm_sample": "stewardship.review_sample",
    "reject_sample": "stewardship.review_sample",
    "stage_thresholds": "stewardship.manage_models",
    "retrain": "stewardship.manage_models",
    "activate_model": "stewardship.manage_models",
    "discard_model": "stewardship.manage_models",
    "replay_rejections": "stewardship.operate_integrations",
    "replay_dead_letters": "stewardship.operate_integrations",
}
REFUSED = "stewardship.no_such_action"

# Apps whose models both roles may view (the admin's own pages, history included).
VIEWED_APPS = ("mdm", "matching", "stewardship")

# Stewards change data only through the stewardship pages (services with preview, history and
# recompute), never through the admin's raw model forms — so besides viewing every model they
# need only the action permissions.
STEWARD_PERMISSIONS = (
    BROWSE,
    "stewardship.decide_candidate",
    "stewardship.merge_golden",
    "stewardship.split_golden",
    "stewardship.pin_value",
    "stewardship.edit_rules",
    "stewardship.review_sample",
    "stewardship.manage_models",
    "stewardship.operate_integrations",
)
AUDITOR_PERMISSIONS = (BROWSE,)

ROLES: dict[str, tuple[str, ...]] = {
    "steward": STEWARD_PERMISSIONS,
    "auditor": AUDITOR_PERMISSIONS,
}


def permission_for(action: str) -> str:
    return ACTION_PERMISSIONS.get(action, REFUSED)


def _permissions(names: tuple[str, ...]) -> list[Permission]:
    found = []
    for name in names:
        app_label, codename = name.split(".", 1)
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    view = Permission.objects.filter(
        content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"
    )
    return [*found, *view]


def setup_roles() -> dict[str, int]:
    """Create (or reset) the steward and auditor groups; returns permissions per group.

    Idempotent: a group's permissions are set to exactly the role's list each time."""
    granted = {}
    with transaction.atomic():
        for name, permission_names in ROLES.items():
            group, _ = Group.objects.get_or_create(name=name)
            permissions = _permissions(permission_names)
            group.permissions.set(permissions)
            granted[name] = len(permissions)
    return granted
