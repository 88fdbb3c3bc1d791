"""The incremental fast path: term frequencies read in one query, and the scoring statement
prepared once per thread, give what the plain path gives."""

import pandas as pd
import pytest

from matching import engine, scoring
from matching.engine import scoring_connection
from matching.frame import RECORD_FIELDS, build_frame
from matching.frequencies import tf_columns, with_frequencies
from matching.review import review_pairs
from matching.scoring import (
    explanation,
    frame_with_frequencies,
    level_labels,
    score_pair_columns,
    score_pairs,
    scoring_frame,
)
from matching.services import predict_pairs, run_batch_matching
from matching.specs import get_spec
from mdm.models import SourceRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def matched(customer_model, settings):
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}
    run_batch_matching(entity_type="customer", actor="test")
    return customer_model


def test_frequencies_read_in_one_query_equal_the_stored_ones(matched):
    spec = get_spec("customer")
    frame = build_frame(spec)

    fast = frame_with_frequencies("customer", frame, matched)
    plain = with_frequencies("customer", frame, tf_columns(matched.settings))

    assert fast.equals(plain)
    assert fast["tf_given_name_key"].null_count < fast.num_rows


def test_prepared_scoring_is_reused_across_calls_and_stays_exact(matched):
    spec = get_spec("customer")
    predicted = predict_pairs(build_frame(spec), dict(matched.settings), min_probability=0.0)
    pairs = list(zip(predicted["unique_id_l"], predicted["unique_id_r"], strict=True))
    expected = dict(zip(pairs, predicted["match_probability"], strict=True))
    frame = scoring_frame(spec, matched, sorted(SourceRecord.objects.values_list(*RECORD_FIELDS)))

    for chunk in (pairs[:1], pairs[1:7], pairs, pairs[:3]):  # one statement, many loads
        scored = score_pairs(matched, frame, chunk)
        assert len(scored) == len(chunk)
        for left, right, probability in zip(
            scored["unique_id_l"], scored["unique_id_r"], scored["match_probability"], strict=True
        ):
            assert probability == pytest.approx(expected[(left, right)], abs=1e-6)


def test_the_scoring_tables_do_not_grow_with_the_calls(matched, monkeypatch):
    """DuckDB keeps the rows a DELETE removed for as long as a table lives: the pair tables
    are created anew every RECREATE_AFTER calls, so a worker's memory stays bounded."""
    monkeypatch.setattr(scoring, "RECREATE_AFTER", 10, raising=False)
    spec = get_spec("customer")
    predicted = predict_pairs(build_frame(spec), dict(matched.settings), min_probability=0.0)
    pairs = list(zip(predicted["unique_id_l"], predicted["unique_id_r"], strict=True))[:20]
    frame = scoring_frame(spec, matched, sorted(SourceRecord.objects.values_list(*RECORD_FIELDS)))

    for _ in range(45):
        scored = score_pairs(matched, frame, pairs)
    ((rows_kept,),) = (
        scoring_connection()
        .execute(
            "select estimated_size from duckdb_tables() where table_name = ?",
            [scoring.LEFT_TABLE],
        )
        .fetchall()  # the whole result: the connection is free again
    )

    assert len(scored) == len(pairs)
    assert rows_kept <= 10 * len(pairs)  # not 45 calls' worth


def test_scoring_unoptimized_computes_every_column_as_the_optimized_plan(matched, monkeypatch):
    """The scoring connection runs Splink's SQL without DuckDB's optimizer (planning cost
    more than computing a few pairs): each value of each pair is the optimized plan's, exactly."""
    spec = get_spec("customer")
    predicted = predict_pairs(build_frame(spec), dict(matched.settings), min_probability=0.0)
    pairs = list(zip(predicted["unique_id_l"], predicted["unique_id_r"], strict=True))
    frame = scoring_frame(spec, matched, sorted(SourceRecord.objects.values_list(*RECORD_FIELDS)))
    unoptimized = score_pairs(matched, frame, pairs)
    optimizing = engine._small_connection()
    monkeypatch.setattr(scoring, "scoring_connection", lambda: optimizing)

    optimized = score_pairs(matched, frame, pairs)

    assert len(pairs) > 100
    pd.testing.assert_frame_equal(unoptimized, optimized, check_exact=True)


def test_scored_columns_give_what_the_scored_frame_gives_and_explain_alike(matched):
    """Incremental matching reads the scores column by column (no DataFrame of ~80 columns):
    the same values, and the same rows (NULL as None) and explanations for review."""
    spec = get_spec("customer")
    predicted = predict_pairs(build_frame(spec), dict(matched.settings), min_probability=0.0)
    pairs = list(zip(predicted["unique_id_l"], predicted["unique_id_r"], strict=True))
    frame = scoring_frame(spec, matched, sorted(SourceRecord.objects.values_list(*RECORD_FIELDS)))
    labels = level_labels(matched.settings)

    columns = score_pair_columns(matched, frame, pairs)
    scored = score_pairs(matched, frame, pairs)

    rows = [columns.row(position) for position in range(len(columns))]
    assert pd.DataFrame(rows, columns=list(scored.columns)).astype(scored.dtypes).equals(scored)
    assert columns.at_least(0.5) == scored.index[scored["match_probability"] >= 0.5].tolist()
    assert [explanation(row, labels) for row in rows] == [
        explanation(row, labels) for row in scored.to_dict("records")
    ]
    assert review_pairs(rows, labels) == review_pairs(scored, labels)
    assert any(value is None for row in rows for value in row.values())


def test_nothing_but_the_pair_tables_lives_on_the_scoring_connection(matched):
    """A view registered (or a table created) on the scoring connection after the PREPARE
    makes DuckDB bind the statement again at every EXECUTE: the connection holds the two pair
    tables and nothing else, across calls."""
    spec = get_spec("customer")
    predicted = predict_pairs(build_frame(spec), dict(matched.settings), min_probability=0.0)
    pairs = list(zip(predicted["unique_id_l"], predicted["unique_id_r"], strict=True))
    frame = scoring_frame(spec, matched, sorted(SourceRecord.objects.values_list(*RECORD_FIELDS)))
    for chunk in (pairs[:3], pairs):
        score_pairs(matched, frame, chunk)
    con = scoring_connection()

    views = con.execute("select view_name from duckdb_views() where not internal").fetchall()
    tables = con.execute("select table_name from duckdb_tables() order by 1").fetchall()

    assert views == []
    assert tables == sorted([(scoring.LEFT_TABLE,), (scoring.RIGHT_TABLE,)])
