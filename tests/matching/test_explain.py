"""Explanations in a steward's words: level labels declared with the specs, the chart that
starts at the prior and adds up, and attribute colours that follow the model's levels."""

import copy
import math

import pytest

from matching.explain import (
    PRIOR,
    covered_fields,
    described,
    field_of,
    field_readings,
    prior_weight,
    probability_of,
    weight_chart,
)
from matching.models import MatchCandidate
from matching.scoring import declared_labels, level_labels
from matching.services import explain_pair, probe_matches, run_batch_matching
from matching.specs import SPECS
from mdm.entities import get_entity

SPLINK_WORDS = ("_key", '"', ">=", "<=", "NULL", "All other", "Jaro", "Levenshtein", "Exact match")


def _levels(spec):
    for comparison in spec.comparisons:
        described_comparison = comparison.get_comparison("duckdb").as_dict()
        for level in described_comparison["comparison_levels"]:
            yield described_comparison["output_column_name"], level


@pytest.mark.parametrize("entity_type", sorted(SPECS))
def test_every_comparison_level_is_declared_in_plain_words(entity_type):
    for column, level in _levels(SPECS[entity_type]):
        label = level.get("label_for_charts", "")
        assert label, f"{entity_type}.{column}: level {level['sql_condition']!r} has no label"
        assert not any(word in label for word in SPLINK_WORDS), (column, label)


def _customer_model_with_splink_labels() -> dict:
    """The customer spec as a model trained before labels were declared: Splink's own."""
    comparisons = []
    for comparison in SPECS["customer"].comparisons:
        described_comparison = copy.deepcopy(comparison.get_comparison("duckdb").as_dict())
        for level in described_comparison["comparison_levels"]:
            level["label_for_charts"] = f"splink: {level['sql_condition'][:40]}"
        comparisons.append(described_comparison)
    return {"comparisons": comparisons, "probability_two_random_records_match": 0.001}


def test_a_stored_model_reads_in_the_words_the_spec_declares_now():
    labels = level_labels(_customer_model_with_splink_labels())

    assert labels["name_key"][-1] == "no name on one side"
    assert labels["name_key"][max(labels["name_key"])] == "same name"
    assert labels["name_key"][0] == "different names"
    assert labels["country"] == {
        -1: "no country on one side",
        1: "same country",
        0: "different countries",
    }


def test_an_entry_stored_with_splink_words_is_described_in_the_specs_words():
    model = _customer_model_with_splink_labels()
    name_levels = model["comparisons"][0]["comparison_levels"]
    exact_label = name_levels[1]["label_for_charts"]  # the level after the null level
    else_label = name_levels[-1]["label_for_charts"]
    stored = {
        "name_key": {"level": exact_label, "left": "acme", "right": "acme", "match_weight": 8.23},
        "phone_key": {"level": "null", "left": None, "right": "+4930", "match_weight": 0.0},
        "country": {"level": else_label, "left": "DE", "right": "FR", "match_weight": -3.0},
    }
    stored["country"]["level"] = model["comparisons"][-1]["comparison_levels"][-1][
        "label_for_charts"
    ]

    explained = described(stored, model)

    assert explained["name_key"]["level"] == "same name"
    assert explained["name_key"]["tone"] == "same"
    assert explained["phone_key"]["level"] == "no phone on one side"
    assert explained["phone_key"]["tone"] == "none"
    assert explained["country"]["level"] == "different countries"
    assert explained["country"]["tone"] == "differ"


def test_the_chart_starts_at_the_prior_and_its_bars_add_up_to_the_total():
    model = {"probability_two_random_records_match": 0.00071}
    explained = {
        "name_key": {"level": "same name", "tone": "same", "match_weight": 8.2312},
        "email_key": {"level": "same e-mail address", "tone": "same", "match_weight": 2.4021},
        "country": {"level": "different countries", "tone": "differ", "match_weight": -1.1},
    }
    prior = prior_weight(model)

    chart = weight_chart("customer", explained, prior=prior, match_weight=0.0)

    assert prior == pytest.approx(math.log2(0.00071 / (1 - 0.00071)))
    assert chart.steps[0].name == PRIOR
    assert chart.steps[0].weight == round(prior, 2)
    assert [s.name for s in chart.steps[1:]] == ["name_key", "email_key", "country"]
    assert sum(s.weight for s in chart.steps) == pytest.approx(chart.total, abs=1e-9)
    for before, after in zip(chart.steps, chart.steps[1:], strict=False):
        assert after.start == pytest.approx(before.end, abs=0.011)
    assert chart.probability == pytest.approx(2**chart.total / (1 + 2**chart.total))


def test_without_a_model_the_chart_starts_where_the_stored_total_leaves():
    explained = {"name_key": {"level": "same name", "tone": "same", "match_weight": 8.23}}

    chart = weight_chart("customer", explained, prior=None, match_weight=0.2)

    assert chart.steps[0].weight == pytest.approx(-8.03)
    assert chart.total == pytest.approx(0.2)
    assert not chart.prior_from_model


def test_probability_of_a_weight():
    assert probability_of(0.0) == 0.5
    assert probability_of(1.0) == pytest.approx(2 / 3)
    assert probability_of(-2000.0) == 0.0
    assert probability_of(2000.0) == 1.0


def test_comparisons_cover_the_fields_they_read():
    customer = covered_fields("customer")
    entitlement = covered_fields("entitlement")

    assert customer["name_key"] == ("name",)
    assert customer["email_key"] == ("email",)
    assert customer["domain"] == ("website",)
    assert set(customer["location"]) == {"address_line1", "postal_code", "city"}
    assert {"contract_key", "product_key", "customer_key"} <= set(entitlement["holder"])


@pytest.mark.parametrize("entity_type", sorted(SPECS))
def test_every_frame_column_reads_a_declared_field(entity_type):
    declared = set(get_entity(entity_type).survived_fields)

    for column, source in SPECS[entity_type].columns.items():
        assert field_of(source) in declared, column


def test_a_field_reads_as_its_own_comparison_says():
    explained = {
        "given_name_key": {"level": "given name not compared", "tone": "none", "match_weight": 0},
        "name_key": {"level": "same name", "tone": "same", "match_weight": 8.0},
        "location": {"level": "different addresses", "tone": "differ", "match_weight": -3.6},
    }

    readings = field_readings("customer", explained)

    assert readings["name"].label == "same name"
    assert readings["name"].tone == "same"
    assert readings["city"].tone == "differ"
    assert "kind" not in readings


# ------------------------------------------------------------------------ with a real model


@pytest.fixture
def review_only(customer_model, settings):
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}
    run_batch_matching(entity_type="customer", actor="test")
    return customer_model


@pytest.mark.django_db
def test_a_real_candidate_reads_in_declared_words_and_adds_up_to_its_score(review_only):
    words = set(declared_labels().values())
    keys = {"rec-5-org", "rec-5-dup-0"}  # either side: golden-record pairs order by golden ID
    candidate = MatchCandidate.objects.select_related("model").get(
        left__source_key__in=keys, right__source_key__in=keys
    )

    explained = described(candidate.explanation, candidate.model.settings)
    chart = weight_chart(
        "customer",
        explained,
        prior=prior_weight(candidate.model.settings),
        match_weight=candidate.match_weight,
    )

    assert {entry["level"] for entry in candidate.explanation.values()} <= words
    assert {entry["tone"] for entry in candidate.explanation.values()} <= {
        "same",
        "close",
        "differ",
        "none",
    }
    assert chart.prior_from_model
    tolerance = 0.005 * len(chart.steps)
    assert chart.total == pytest.approx(candidate.match_weight, abs=tolerance)
    assert chart.probability == pytest.approx(candidate.probability, abs=0.01)


@pytest.mark.django_db
def test_the_probe_and_explain_pair_speak_the_same_words(review_only, febrl_sample):
    words = set(declared_labels().values())
    typo = next(r for r in febrl_sample["erp"] if r["source_key"] == "rec-7-dup-0")
    candidate = MatchCandidate.objects.first()

    matches = probe_matches(entity_type="customer", attributes=typo, limit=3)
    pair = explain_pair(left_record_id=candidate.left_id, right_record_id=candidate.right_id)

    assert {e["level"] for e in matches[0].explanation.values()} <= words
    assert {e["level"] for e in pair.attributes.values()} <= words
    assert matches[0].explanation["tax_id_key"]["level"] == "same tax ID"


def test_entries_read_in_the_order_of_the_models_comparisons():
    model = _customer_model_with_splink_labels()
    stored = {
        "country": {"level": "x", "gamma": 1, "match_weight": 1.0},
        "name_key": {"level": "x", "gamma": 6, "match_weight": 8.0},
        "email_key": {"level": "x", "gamma": 3, "match_weight": 2.0},
    }

    assert list(described(stored, model)) == ["name_key", "email_key", "country"]


def test_a_refusal_reason_is_no_bar_of_the_chart():
    explained = {
        "constraint": {"level": "conflicting tax IDs", "tone": "none", "match_weight": 0.0},
        "name_key": {"level": "same name", "tone": "same", "match_weight": 8.0},
    }

    chart = weight_chart("customer", explained, prior=-10.0, match_weight=-2.0)

    assert [s.name for s in chart.steps] == [PRIOR, "name_key"]
