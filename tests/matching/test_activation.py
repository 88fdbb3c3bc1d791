"""Model versions are staged, compared with the active one and activated (or discarded) by a
steward: the diff says what a match run under the staged version would do, and does."""

import pytest

from matching.activation import (
    RESCORED,
    STORED_SCORES,
    activate_model,
    discard_model,
    new_version,
    stage_thresholds,
    store_diff,
)
from matching.models import CandidateStatus, MatchCandidate, MatchModel, ModelChange
from matching.services import run_batch_matching
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def review_only(customer_model, settings):
    """Everything scored at 0.5 or more is an open candidate; nothing is linked."""
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}
    run_batch_matching(entity_type="customer", actor="test")
    return customer_model


def _membership() -> dict[int, str]:
    return dict(SourceRecord.objects.values_list("pk", "golden_id"))


def test_a_threshold_change_is_staged_with_its_diff_from_stored_scores(review_only):
    before = _membership()
    open_before = MatchCandidate.objects.filter(status=CandidateStatus.OPEN).count()

    staged = stage_thresholds(
        entity_type="customer", auto_link=0.95, review=0.6, actor="alice", reason="fewer reviews"
    )

    diff = staged.diff
    assert staged.state == "staged" and staged.change == ModelChange.THRESHOLDS
    assert MatchModel.objects.get(is_active=True).pk == review_only.pk
    assert diff["method"] == STORED_SCORES
    assert diff["thresholds"]["staged"] == {"auto_link": 0.95, "review": 0.6}
    assert diff["merges"]["count"] > 5
    for example in diff["merges"]["examples"]:
        assert all(absorbed["probability"] >= 0.95 for absorbed in example["absorbed"])
        assert example["survivor"]["name"]
    assert diff["candidates_added"]["count"] == 0
    assert diff["candidates_closed"]["count"] >= diff["merges"]["goldens_absorbed"]
    assert {e["why"] for e in diff["candidates_closed"]["examples"]} <= {
        "would merge",
        "below the review threshold",
    }
    assert _membership() == before
    assert MatchCandidate.objects.filter(status=CandidateStatus.OPEN).count() == open_before


def test_activating_applies_from_the_next_run_exactly_what_the_diff_said(review_only):
    staged = stage_thresholds(
        entity_type="customer", auto_link=0.95, review=0.5, actor="alice", reason="link sure pairs"
    )
    active_goldens = GoldenRecord.objects.filter(status=GoldenStatus.ACTIVE).count()

    activate_model(model=staged, actor="alice", reason="precision checked on the sample")
    summary = run_batch_matching(entity_type="customer", actor="test")

    staged.refresh_from_db()
    review_only.refresh_from_db()
    assert (staged.state, review_only.state) == ("active", "retired")
    assert staged.activation_reason == "precision checked on the sample"
    assert summary.model_version == staged.version
    assert summary.merges == staged.diff["merges"]["goldens_absorbed"] > 5
    assert summary.goldens_after == active_goldens - summary.merges
    assert staged.history.filter(history_change_reason__startswith="activated:").exists()


def test_a_retrained_model_is_rescored_and_its_diff_holds_after_activation(review_only):
    settings = dict(review_only.settings)
    settings["probability_two_random_records_match"] *= 50  # a far more eager model
    staged = new_version(
        entity_type="customer",
        settings=settings,
        training_report={},
        thresholds={"auto_link": 0.95, "review": 0.5},
        change=ModelChange.RETRAIN,
        actor="test",
    )

    store_diff(staged)
    activate_model(model=staged, actor="alice", reason="retrained on new data")
    summary = run_batch_matching(entity_type="customer", actor="test")

    assert staged.diff["method"] == RESCORED
    assert staged.diff["records"] == SourceRecord.objects.filter(deleted=False).count()
    assert summary.merges == staged.diff["merges"]["goldens_absorbed"] > 5


def test_a_retrain_by_the_batch_run_is_staged_and_links_nothing(review_only):
    before = _membership()

    summary = run_batch_matching(entity_type="customer", actor="test", retrain=True)

    staged = MatchModel.objects.get(version=2)
    assert summary.staged_model_version == 2 and summary.merges == 0
    assert staged.state == "staged" and staged.diff["compared_with"] == 1
    assert MatchModel.objects.get(is_active=True).version == 1
    assert _membership() == before


def test_raising_the_auto_link_threshold_shows_the_links_it_would_not_make(customer_model):
    run_batch_matching(entity_type="customer", actor="test")
    linked = SourceRecord.objects.filter(link_method="auto", link_probability__lt=0.9999)

    staged = stage_thresholds(
        entity_type="customer", auto_link=0.9999, review=0.95, actor="a", reason="stricter"
    )

    assert staged.diff["method"] == STORED_SCORES
    assert staged.diff["splits"]["records"] == linked.count() > 0
    assert staged.diff["splits"]["count"] == len({r.golden_id for r in linked})


def test_activation_and_discarding_need_a_reason_and_a_staged_model(review_only):
    staged = stage_thresholds(
        entity_type="customer", auto_link=0.97, review=0.6, actor="a", reason="try"
    )

    with pytest.raises(InvalidResolution):
        activate_model(model=staged, actor="alice", reason=" ")
    discard_model(model=staged, actor="alice", reason="too strict")
    with pytest.raises(InvalidResolution):
        activate_model(model=staged, actor="alice", reason="changed my mind")
    with pytest.raises(InvalidResolution):
        stage_thresholds(entity_type="customer", auto_link=0.5, review=0.6, actor="a", reason="")

    staged.refresh_from_db()
    assert staged.state == "discarded" and staged.discard_reason == "too strict"
    assert MatchModel.objects.get(is_active=True).pk == review_only.pk
