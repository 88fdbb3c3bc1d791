"""The desk's model pages: stage a threshold change, read its diff, activate or discard with
a reason; the audit view of a finished run."""

import pytest
from django.urls import reverse

from matching.models import MatchModel, MatchRun
from matching.services import run_batch_matching

pytestmark = pytest.mark.django_db


@pytest.fixture
def review_only(customer_model, settings):
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}
    run_batch_matching(entity_type="customer", actor="test")
    return customer_model


def test_a_steward_stages_reads_and_activates_a_threshold_change(steward_client, review_only):
    response = steward_client.post(
        reverse("stewardship:models"),
        {
            "action": "stage_thresholds",
            "entity": "customer",
            "auto_link": "0.95",
            "review": "0.6",
            "reason": "sure pairs need no steward",
        },
    )
    staged = MatchModel.objects.get(version=2)
    page = steward_client.get(response["Location"]).content.decode()

    assert response["Location"] == reverse("stewardship:model", args=[staged.pk])
    assert f'id="diff-merges">{staged.diff["merges"]["count"]}<' in page
    assert staged.state == "staged"
    steward_client.post(
        reverse("stewardship:model", args=[staged.pk]), {"action": "activate_model", "reason": ""}
    )
    assert MatchModel.objects.get(pk=staged.pk).state == "staged"  # a reason is required
    steward_client.post(
        reverse("stewardship:model", args=[staged.pk]),
        {"action": "activate_model", "reason": "checked the examples"},
    )
    staged.refresh_from_db()
    assert staged.state == "active" and staged.activated_by.get_username() == "alice"


def test_bad_thresholds_are_refused_with_a_message(steward_client, review_only):
    response = steward_client.post(
        reverse("stewardship:models"),
        {"action": "stage_thresholds", "entity": "customer", "auto_link": "x", "review": "0.6"},
        follow=True,
    )

    assert "a probability such as 0.95" in response.content.decode()
    assert MatchModel.objects.count() == 1


def test_retrain_from_the_desk_stages_a_version(
    steward_client, review_only, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        steward_client.post(
            reverse("stewardship:models"),
            {"action": "retrain", "entity": "customer", "reason": "new data"},
        )

    staged = MatchModel.objects.get(version=2)
    assert staged.state == "staged" and staged.staged_by == "user:alice"
    assert staged.diff["compared_with"] == 1


def test_auditors_read_models_but_may_not_change_them(auditor_client, review_only):
    assert auditor_client.get(reverse("stewardship:models")).status_code == 200
    response = auditor_client.post(
        reverse("stewardship:models"),
        {"action": "stage_thresholds", "entity": "customer", "auto_link": "0.9", "review": "0.6"},
    )
    assert response.status_code == 403


def test_the_run_page_shows_what_a_run_merged_and_queued(steward_client, customer_model):
    summary = run_batch_matching(entity_type="customer", actor="test")
    run = MatchRun.objects.get(pk=summary.run_id)

    response = steward_client.get(reverse("stewardship:run", args=[run.pk]))

    audit = response.context["audit"]
    assert audit.merge_count == summary.merges > 10
    assert audit.queued_count == summary.sent_to_review
    assert all(m.survivor_id and m.loser_id for m in audit.merges)
    html = response.content.decode()
    assert f'id="run-merged">{summary.merges}<' in html
    assert f"{summary.goldens_before} → {summary.goldens_after}" in html


def test_the_models_page_says_the_sparse_organizations_bar(steward_client, customer_model):
    page = steward_client.get(reverse("stewardship:models")).content.decode()
    model_page = steward_client.get(
        reverse("stewardship:model", args=[customer_model.pk])
    ).content.decode()

    said = "(two organizations with no tax ID, e-mail, website or date of birth: ≥ <strong>0.95"
    assert said in page and said in model_page
