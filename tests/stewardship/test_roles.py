"""Roles: stewards act, auditors read everything and change nothing (403 on any POST)."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from matching.models import CandidateStatus
from mdm.models import IngestRejection, RejectionStatus, SourceRecord
from mdm.services.ingest import ingest_records
from stewardship.roles import ACTION_PERMISSIONS

pytestmark = pytest.mark.django_db


def test_setup_roles_creates_both_groups_and_is_idempotent(django_user_model):
    call_command("setup_roles", stdout=StringIO())
    django_user_model.objects.create_user("sam")

    call_command("setup_roles", "--user", "sam:steward", stdout=StringIO())

    steward = Group.objects.get(name="steward")
    auditor = Group.objects.get(name="auditor")
    steward_perms = set(steward.permissions.values_list("codename", flat=True))
    auditor_perms = set(auditor.permissions.values_list("codename", flat=True))
    assert {"decide_candidate", "merge_golden", "split_golden", "pin_value", "edit_rules"} <= (
        steward_perms
    )
    assert {"view_goldenrecord", "view_historicalgoldenrecord", "view_matchdecision"} <= (
        auditor_perms
    )
    assert not {p for p in auditor_perms if not p.startswith("view_")} - {"browse"}
    sam = django_user_model.objects.get(username="sam")
    assert sam.is_staff and sam.has_perm("stewardship.split_golden")


def test_auditor_sees_pages_without_action_buttons(auditor_client, acme_pair):
    candidate = auditor_client.get(reverse("stewardship:candidate", args=[acme_pair.pk]))
    queue = auditor_client.get(reverse("stewardship:queue"))
    crm = SourceRecord.objects.get(
        pk__in=[acme_pair.left_id, acme_pair.right_id], source_system__code="crm"
    )
    golden = auditor_client.get(reverse("stewardship:golden", args=[crm.golden_id]))

    assert candidate.status_code == queue.status_code == golden.status_code == 200
    for response in (candidate, queue, golden):
        html = response.content.decode()
        assert 'name="action"' not in html
    assert "Acme Corporation" in golden.content.decode()


def test_auditor_gets_403_on_any_post(auditor_client, acme_pair):
    golden_id = acme_pair.left.golden_id
    urls = (
        reverse("stewardship:candidate", args=[acme_pair.pk]),
        reverse("stewardship:queue"),
        reverse("stewardship:golden", args=[golden_id]),
        reverse("stewardship:rule", args=["customer", "city"]),
        reverse("stewardship:accuracy"),
        reverse("stewardship:dashboard"),
    )

    statuses = {
        auditor_client.post(url, {"action": action, "reason": "x"}).status_code
        for url in urls
        for action in [*ACTION_PERMISSIONS, "anything"]
    }

    assert statuses == {403}

    acme_pair.refresh_from_db()
    assert acme_pair.status == CandidateStatus.OPEN


def test_auditor_reads_history_and_the_audit_log(auditor_client, steward_client, acme_pair):
    steward_client.post(
        reverse("stewardship:candidate", args=[acme_pair.pk]),
        {"action": "not_a_match", "reason": "different"},
    )

    log = auditor_client.get(reverse("stewardship:audit"), {"kind": "decision"})
    history = auditor_client.get(
        reverse("stewardship:golden_history", args=[acme_pair.left.golden_id])
    )

    assert "user:alice" in log.content.decode() and "different" in log.content.decode()
    assert "not_a_match" in history.content.decode()


def test_auditor_cannot_change_anything_in_the_plain_admin(auditor_client):
    response = auditor_client.get(reverse("admin:mdm_survivorshiprule_add"))

    assert response.status_code == 403


def test_a_user_without_a_role_is_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("x", is_staff=True))

    assert client.get(reverse("stewardship:dashboard")).status_code == 403


def test_anonymous_users_are_sent_to_the_login(client):
    response = client.get(reverse("stewardship:queue"))

    assert response.status_code == 302 and "/admin/login/" in response.url


def test_auditor_cannot_run_admin_actions(auditor_client):
    """Review 2026-12: an admin action without `permissions` ran for anyone who could view the
    list — an auditor replayed rejections (writing source records) from the admin."""
    ingest_records(
        entity_type="customer",
        system_code="crm",
        rows=[(1, {"name": "no key"})],
        actor="t",
        create_system=True,
    )
    rejection = IngestRejection.objects.get()
    IngestRejection.objects.filter(pk=rejection.pk).update(
        payload={"source_key": "fixed-1", "name": "Fixed"}
    )

    auditor_client.post(
        reverse("admin:mdm_ingestrejection_changelist"),
        {"action": "replay", "_selected_action": [rejection.pk]},
    )

    rejection.refresh_from_db()
    assert rejection.status == RejectionStatus.OPEN
    assert not SourceRecord.objects.filter(source_key="fixed-1").exists()


def test_every_admin_action_needs_a_permission_beyond_viewing():
    """Django runs an action without `permissions` for whoever may view the list."""
    from django.contrib import admin

    unguarded = [
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        for func, name, _ in model_admin._get_base_actions()
        if not set(getattr(func, "allowed_permissions", ())) - {"view"}
    ]

    assert unguarded == []


def test_a_user_without_a_role_learns_nothing_from_a_steward_url(
    client, django_user_model, steward_account
):
    """Review 2026-12: pages that look their object up first answered a signed-in user without
    a role with a redirect to a merged record's survivor, or 404 for an unknown one — before
    the role check said 403."""
    from mdm.services.resolution import merge
    from tests.stewardship.conftest import ingest

    survivor, loser = ingest("crm", name="Acme").golden, ingest("erp", name="Acme Corp").golden
    merge(survivor=survivor, loser=loser, actor=steward_account, reason="same")
    client.force_login(django_user_model.objects.create_user("nobody", is_staff=True))
    urls = (
        reverse("stewardship:golden", args=[loser.pk]),
        reverse("stewardship:golden", args=["CUS-NO-SUCH"]),
        reverse("stewardship:rule", args=["customer", "no_such_attribute"]),
        reverse("stewardship:golden_history_csv", args=[survivor.pk]),
    )

    statuses = {client.get(url).status_code for url in urls}

    assert statuses == {403}


@pytest.mark.parametrize("value", ["abc", "²", "-1"])
def test_form_values_that_are_no_id_are_never_a_500(steward_client, acme_pair, value):
    """Review 2026-12: an object id posted as text (or "²", which `isdigit` accepts and `int`
    refuses) was a 500 on the approvals, accuracy, queue and golden record pages."""
    golden = reverse("stewardship:golden", args=[acme_pair.left_golden_id])
    posts = (
        (reverse("stewardship:approvals"), {"action": "approve", "request": value}),
        (reverse("stewardship:accuracy"), {"action": "confirm_sample", "sample": value}),
        (reverse("stewardship:queue"), {"action": "assign", "assignee": value}),
        (reverse("stewardship:queue"), {"action": "bulk_merge", "selected": [value]}),
        (golden, {"action": "split", "members": [value]}),
    )

    statuses = [steward_client.post(url, data).status_code for url, data in posts]
    preview = steward_client.get(golden, {"preview_split": "1", "members": [value]})

    assert all(status < 500 for status in statuses), statuses
    assert preview.status_code == 200
