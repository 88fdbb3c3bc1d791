"""Term frequencies: computed from a frame, stored per entity type, read back for scoring."""

import dataclasses

import pytest
import splink.comparison_library as cl

from matching import frequencies
from matching.frame import frame_from_rows
from matching.models import TermFrequency
from matching.specs import PRODUCT_SPEC, settings_for

pytestmark = pytest.mark.django_db

# The product spec without its one frequency-adjusted comparison (unit of measure).
NO_TF_SPEC = dataclasses.replace(
    PRODUCT_SPEC,
    comparisons=(*PRODUCT_SPEC.comparisons[:-1], cl.ExactMatch("unit_of_measure_key")),
)


def _frame():
    return frame_from_rows(
        PRODUCT_SPEC,
        [
            (1, {"unit_of_measure_key": "HOUR"}, {}),
            (2, {"unit_of_measure_key": "USER"}, {}),
            (3, {"unit_of_measure_key": "USER"}, {}),
        ],
    )


def _model(spec) -> dict:
    return settings_for(spec).create_settings_dict("duckdb")


def test_model_without_tf_columns_rebuilds_to_no_frequencies():
    TermFrequency.objects.create(
        entity_type="product", column="unit_of_measure_key", value="X", frequency=1.0
    )
    columns = frequencies.tf_columns(_model(NO_TF_SPEC))

    stored = frequencies.rebuild("product", frequencies.compute(_frame(), columns))

    assert columns == ()
    assert stored == 0
    assert not TermFrequency.objects.filter(entity_type="product").exists()


def test_no_tf_columns_gives_a_typed_empty_table():
    table = frequencies.compute(_frame(), ())

    assert table.num_rows == 0
    assert table.schema == frequencies.SCHEMA


def test_frequencies_are_the_share_of_non_null_values():
    columns = frequencies.tf_columns(_model(PRODUCT_SPEC))

    frequencies.rebuild("product", frequencies.compute(_frame(), columns))

    assert columns == ("unit_of_measure_key",)
    assert dict(
        TermFrequency.objects.filter(entity_type="product").values_list("value", "frequency")
    ) == pytest.approx({"HOUR": 1 / 3, "USER": 2 / 3})


def test_computed_frequencies_have_the_stored_schema():
    table = frequencies.compute(_frame(), ("unit_of_measure_key",))

    assert table.schema == frequencies.SCHEMA


def test_adjustments_on_exact_levels_of_their_own_column_are_recognised():
    from matching.frequencies import tf_on_exact_levels

    def model(condition: str) -> dict:
        level = {"sql_condition": condition, "tf_adjustment_column": "name_key"}
        return {"comparisons": [{"comparison_levels": [{"sql_condition": "ELSE"}, level]}]}

    assert tf_on_exact_levels(model('"name_key_l" = "name_key_r"'))
    assert not tf_on_exact_levels(
        model('jaro_winkler_similarity("name_key_l", "name_key_r") > 0.9')
    )
    assert not tf_on_exact_levels(model('"city_l" = "city_r"'))
