"""Training: a failed or empty EM block leaves the model as it found it."""

import dataclasses

import pytest
from splink import block_on

from matching.frame import frame_from_rows
from matching.specs import CUSTOMER_SPEC
from matching.training import train
from mdm.entities import get_entity
from mdm.normalize import normalize_record

# FEBRL people have no website: a block on the web domain finds no pairs.
EMPTY_BLOCK = block_on("domain")
# The spec's training rules FEBRL's people fill (they have no phone number).
FEBRL_RULES = tuple(r for r in CUSTOMER_SPEC.training_rules if "phone_key" not in repr(r.__dict__))


@pytest.fixture(scope="module")
def febrl_frame(febrl_sample):
    customer = get_entity("customer")
    rows = []
    for pk, row in enumerate([*febrl_sample["crm"], *febrl_sample["erp"]], start=1):
        normalized = normalize_record(customer, row)
        rows.append((pk, normalized.keys, normalized.values))
    return frame_from_rows(CUSTOMER_SPEC, rows)


def _spec(*training_rules):
    return dataclasses.replace(CUSTOMER_SPEC, training_rules=training_rules)


def test_empty_em_block_leaves_the_deterministic_prior(febrl_frame):
    good = CUSTOMER_SPEC.training_rules

    trained = train(_spec(EMPTY_BLOCK, *good), febrl_frame)

    expected = train(_spec(*good), febrl_frame).model["probability_two_random_records_match"]
    assert trained.model["probability_two_random_records_match"] == pytest.approx(expected)
    assert trained.report["deterministic_prior"] == pytest.approx(expected)


def test_empty_em_block_keeps_every_comparison(febrl_frame):
    trained = train(_spec(*CUSTOMER_SPEC.training_rules, EMPTY_BLOCK), febrl_frame)

    names = [c["output_column_name"] for c in trained.model["comparisons"]]
    assert names == [
        c.get_comparison("duckdb").output_column_name for c in CUSTOMER_SPEC.comparisons
    ]


def test_training_report_records_the_prior_around_each_block(febrl_frame):
    trained = train(_spec(EMPTY_BLOCK, *FEBRL_RULES), febrl_frame)

    empty, *others = trained.report["em_rules"]
    assert (empty["ok"], empty["prior_restored"]) == (False, True)
    assert all(r["ok"] and not r["prior_restored"] for r in others)
    assert {r["prior_before"] for r in trained.report["em_rules"]} == {
        trained.report["deterministic_prior"]
    }
