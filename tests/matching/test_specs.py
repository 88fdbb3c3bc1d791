"""The match specs are data: these checks keep the declarations consistent with each other and
with what Splink and the blocking-key index accept. No database."""

import re

import duckdb
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker, SettingsCreator
from splink.internals.parse_sql import get_columns_used_from_sql

from matching.generic import with_companions
from matching.specs import (
    ATTRIBUTES,
    MATCH_KEYS,
    REFERENCES,
    SPECS,
    get_spec,
    settings_for,
    thresholds_for,
)
from mdm.entities import ENTITIES

SPEC_PARAMS = pytest.mark.parametrize("spec", SPECS.values(), ids=list(SPECS))


def _columns_in(sql: str) -> set[str]:
    """Frame columns an SQL condition reads (comparison levels name them ``<col>_l``/``_r``)."""
    return {re.sub(r"_(l|r)$", "", c) for c in get_columns_used_from_sql(sql, "duckdb")}


def _comparison_sql(spec) -> list[str]:
    settings = settings_for(spec).get_settings("duckdb")
    return [
        level.sql_condition
        for comparison in settings.comparisons
        for level in comparison.comparison_levels
        if not level._is_else_level
    ]


@SPEC_PARAMS
def test_every_spec_is_registered_under_its_entity_type(spec):
    assert get_spec(spec.entity_type) is spec
    assert spec.entity_type in ENTITIES


def test_unknown_entity_type_has_no_spec():
    with pytest.raises(ValueError, match="no match spec"):
        get_spec("invoice")


@SPEC_PARAMS
def test_columns_are_read_from_declared_attributes_keys_or_references(spec):
    entity = ENTITIES[spec.entity_type]
    for name, (source, key) in spec.columns.items():
        assert source in (MATCH_KEYS, ATTRIBUTES, REFERENCES), name
        assert key, name
        if source == ATTRIBUTES:
            assert key in entity.attribute_names, name
        if source == REFERENCES:
            assert key in entity.reference_columns, name


@SPEC_PARAMS
def test_every_comparison_level_uses_declared_columns_only(spec):
    declared = set(spec.columns)
    for sql in _comparison_sql(spec):
        assert _columns_in(sql) <= declared, sql


@SPEC_PARAMS
def test_every_blocking_rule_uses_declared_columns_only(spec):
    declared = set(spec.columns)
    rules = spec.blocking_rules + spec.deterministic_rules + spec.training_rules
    for rule in rules:
        sql = rule.get_blocking_rule("duckdb").blocking_rule_sql
        assert _columns_in(sql) <= declared, sql


@SPEC_PARAMS
def test_prediction_blocking_rules_are_equalities_the_key_index_can_store(spec):
    for rule in spec.blocking_rules:
        parts = getattr(rule, "blocking_rules", None) or [rule]
        assert all(getattr(part, "col_expression", None) is not None for part in parts), rule


@SPEC_PARAMS
def test_thresholds_are_ordered_probabilities(spec):
    thresholds = thresholds_for(spec.entity_type)
    assert 0 < thresholds.review < thresholds.auto_link <= 1


def test_thresholds_can_be_overridden_from_settings(settings):
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 0.99}}
    thresholds = thresholds_for("customer")
    assert thresholds.auto_link == 0.99
    assert thresholds.review == get_spec("customer").thresholds.review


@SPEC_PARAMS
def test_deterministic_recall_is_a_probability(spec):
    assert 0 < spec.deterministic_recall <= 1
    assert spec.deterministic_rules and spec.training_rules and spec.blocking_rules


@SPEC_PARAMS
def test_settings_for_builds_settings_splink_can_predict_with(spec):
    """Every comparison level and blocking rule compiles and runs on a frame of the spec's
    columns: a typo in a column name or in SQL fails here, not in a match run."""
    creator = settings_for(spec)
    assert isinstance(creator, SettingsCreator)
    values = ["alpha beta", "alpha beta", None]
    frame = with_companions(
        spec,
        pa.table(
            {"unique_id": pa.array([1, 2, 3], pa.int64())}
            | {name: pa.array(values, pa.string()) for name in spec.columns}
        ),
    )
    con = duckdb.connect(":memory:")
    try:
        records = DuckDBAPI(con).register(frame)
        linker = Linker(records, creator)
        output_columns = [c.output_column_name for c in linker._settings_obj.comparisons]
        predictions = linker.inference.predict(warning_mode="never").as_pandas_dataframe()
    finally:
        con.close()
    assert len(output_columns) == len(set(output_columns)) == len(spec.comparisons)
    assert set(zip(predictions["unique_id_l"], predictions["unique_id_r"], strict=True)) == {(1, 2)}


def _level_sql(spec, column: str, label: str) -> str:
    settings = settings_for(spec).get_settings("duckdb")
    comparison = next(c for c in settings.comparisons if c.output_column_name == column)
    return next(
        lv.sql_condition for lv in comparison.comparison_levels if lv.label_for_charts == label
    )


ANOTHER_WORD = "same brand, another word in each name"


@pytest.mark.parametrize(
    ("left", "right", "siblings"),
    [
        ("polarmark networks", "polarmark services", True),
        ("campbell media", "campbell international software", True),
        ("maxwell and marshall capital pty", "maxwell and marshall analytics", True),
        ("van parijs consulting", "van parkjs laboratories", True),  # a typo in the brand
        ("ritz carlton cafe buckhead", "ritz carlton dining room buckhead", True),
        ("maplewell mrdia", "maplewell media", False),  # a typo
        ("crestgate sys", "crestgate systems", False),  # a shortened word
        ("coppertech manufacturing", "coppertech mfg", False),  # an abbreviation
        ("greenpath scvs", "greenpath services", False),  # an abbreviation with a typo
        ("foster and rodriguez international", "foster and rodriguez intl assoc", False),
        ("sparks steak house", "sparks steakhouse", False),
        ("hotel bel air", "bel air hotel", False),
        ("acme", "zenith", False),  # nothing alike: not one brand
    ],
)
def test_organizations_whose_names_each_lack_a_word_of_the_other_are_siblings(
    left, right, siblings
):
    sql = _level_sql(get_spec("customer"), "name_key", ANOTHER_WORD)
    con = duckdb.connect(":memory:")
    try:
        found = con.execute(
            f"SELECT coalesce(({sql}), false) FROM (SELECT ? AS name_key_l, ? AS name_key_r, "
            "'organization' AS kind_l, NULL AS kind_r)",
            [left, right],
        ).fetchone()[0]
    finally:
        con.close()
    assert found is siblings


def test_two_people_are_never_brand_siblings():
    sql = _level_sql(get_spec("customer"), "name_key", ANOTHER_WORD)
    con = duckdb.connect(":memory:")
    try:
        found = con.execute(
            f"SELECT coalesce(({sql}), false) FROM (SELECT 'zoe burgess' AS name_key_l, "
            "'daniel burgess' AS name_key_r, 'person' AS kind_l, 'person' AS kind_r)"
        ).fetchone()[0]
    finally:
        con.close()
    assert found is False
