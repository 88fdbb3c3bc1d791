"""Scoring outside a batch run: same probabilities as Splink's predict, explanations, probe."""

import pytest
from django.db.models import Q

from matching.frame import RECORD_FIELDS, build_frame
from matching.models import MatchCandidate, MatchDecision, Verdict
from matching.scoring import score_pairs, scoring_frame
from matching.services import (
    explain_pair,
    predict_pairs,
    probe_matches,
    run_batch_matching,
    train_model,
)
from matching.specs import get_spec
from mdm.models import SourceRecord

pytestmark = pytest.mark.django_db


def _record(system: str, key: str) -> SourceRecord:
    return SourceRecord.objects.get(source_system__code=system, source_key=key)


@pytest.fixture
def review_only(customer_model, settings):
    """A batch run that links nothing: every scored pair in the band becomes a candidate."""
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}
    run_batch_matching(entity_type="customer", actor="test")
    return customer_model


def test_scorer_gives_splink_predicts_probabilities(review_only):
    model, spec = review_only, get_spec("customer")
    frame = build_frame(spec)
    predicted = predict_pairs(frame, dict(model.settings), min_probability=0.0)
    rows = SourceRecord.objects.values_list(*RECORD_FIELDS)
    pairs = list(zip(predicted["unique_id_l"], predicted["unique_id_r"], strict=True))

    scored = score_pairs(model, scoring_frame(spec, model, sorted(rows)), pairs)

    assert len(scored) == len(predicted) > 100
    expected = dict(zip(pairs, predicted["match_probability"], strict=True))
    for left, right, probability in zip(
        scored["unique_id_l"], scored["unique_id_r"], scored["match_probability"], strict=True
    ):
        assert probability == pytest.approx(expected[(left, right)], abs=1e-6)


def test_explain_pair_matches_the_stored_candidate_explanation(review_only):
    candidate = MatchCandidate.objects.get(
        Q(left__source_key="rec-5-org", right__source_key="rec-5-dup-0")
        | Q(left__source_key="rec-5-dup-0", right__source_key="rec-5-org")
    )

    explained = explain_pair(left_record_id=candidate.left_id, right_record_id=candidate.right_id)

    assert explained.attributes == candidate.explanation
    assert explained.probability == pytest.approx(candidate.probability, abs=1e-6)
    assert explained.match_weight == pytest.approx(candidate.match_weight, abs=1e-6)


def test_probe_ranks_the_right_golden_record_first(customer_model, febrl_sample):
    run_batch_matching(entity_type="customer", actor="test")
    typo = next(r for r in febrl_sample["erp"] if r["source_key"] == "rec-7-dup-0")

    matches = probe_matches(entity_type="customer", attributes=typo, limit=5)

    assert matches[0].golden_id == _record("crm", "rec-7-org").golden_id
    assert matches[0].probability >= 0.95
    assert len({m.golden_id for m in matches}) == len(matches)
    probabilities = [m.probability for m in matches]
    assert probabilities == sorted(probabilities, reverse=True)
    assert {"level", "left", "right", "match_weight"} <= set(matches[0].explanation["tax_id_key"])


def test_retrain_refines_m_with_steward_decisions_and_changes_no_link(customer_model, settings):
    settings.KEYSTONE_MATCH_MIN_LABELS = 10
    run_batch_matching(entity_type="customer", actor="test")
    originals = {r.source_key: r for r in SourceRecord.objects.filter(source_system__code="crm")}
    for duplicate in SourceRecord.objects.filter(source_system__code="erp")[:12]:
        original = originals[duplicate.source_key.split("-dup")[0] + "-org"]
        left, right = sorted((original.pk, duplicate.pk))
        MatchDecision.objects.create(
            entity_type="customer", left_id=left, right_id=right, verdict=Verdict.MATCH
        )

    goldens = dict(SourceRecord.objects.values_list("pk", "golden_id"))

    model = train_model(entity_type="customer")

    labels = model.training_report["steward_labels"]
    assert labels["applied"] is True and labels["match_pairs"] == 12
    assert model.version == 2 and model.is_active
    assert dict(SourceRecord.objects.values_list("pk", "golden_id")) == goldens


def test_frequencies_of_the_records_every_pair_names_give_the_same_scores(review_only):
    from matching.frame import frame_from_records
    from matching.scoring import frame_with_frequencies

    model, spec = review_only, get_spec("customer")  # the run stored term frequencies
    frame = frame_from_records(spec, sorted(SourceRecord.objects.values_list(*RECORD_FIELDS)))
    changed = frame.slice(0, 12)
    named = changed["unique_id"].to_pylist()
    pairs = sorted(
        {(min(a, b), max(a, b)) for a in named for b in frame["unique_id"].to_pylist() if a != b}
    )

    full = score_pairs(model, frame_with_frequencies("customer", frame, model), pairs)
    only_named = score_pairs(
        model, frame_with_frequencies("customer", frame, model, values_of=changed), pairs
    )

    adjusted = [c for c in full.columns if c.startswith("mw_tf_adj_")]
    assert adjusted and (full[adjusted].abs().sum(axis=1) > 0).sum() >= 5  # exact names hit
    assert full["match_probability"].tolist() == only_named["match_probability"].tolist()
    assert full["match_weight"].tolist() == only_named["match_weight"].tolist()
