"""Scoring pairs with a stored model, outside a batch run: incremental matching, the probe,
and explanations.

The SQL is Splink's own (`splink.internals.realtime.compare_records`), generated once per
model and thread and then run against two aligned Arrow tables (row *i* of the left table is
paired with row *i* of the right one) on this thread's small DuckDB connection. Same comparison
levels, same m/u, same term-frequency formula as the batch run's `predict`, so a pair gets the
same probability whichever path scores it — without building a Linker or registering the
whole data set per request.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from django.db import connection
from splink import DuckDBAPI
from splink.internals.realtime import compare_records

from matching import generic
from matching.engine import local_connection, scoring_connection
from matching.errors import NoActiveModel, SourceRecordNotFound
from matching.frame import RECORD_FIELDS, frame_from_records
from matching.frequencies import tf_columns, tf_on_exact_levels, with_frequencies
from matching.models import MatchModel, TermFrequency
from matching.specs import SPECS, MatchSpec, Thresholds, get_spec, thresholds_for
from mdm.db.prepared import prepared_cursor

LEFT_VIEW, RIGHT_VIEW = "__keystone_pairs_left", "__keystone_pairs_right"
_compiled = threading.local()


def active_model(entity_type: str) -> MatchModel | None:
    return MatchModel.objects.filter(entity_type=entity_type, is_active=True).first()


@lru_cache(maxsize=32)
def stored_settings(model_id: int, trained_at: datetime) -> dict:
    """A model version's Splink settings, read once per process: a version never changes its
    settings (`trained_at` keys it, so a reused id after a test rollback is not mistaken)."""
    return MatchModel.objects.values_list("settings", flat=True).get(pk=model_id)


def thresholds_of(model: MatchModel) -> Thresholds:
    """The thresholds `model` applies: its own (a staged threshold change, once activated),
    each one missing falling back to the spec's (`thresholds_for`: settings, then spec)."""
    default = thresholds_for(model.entity_type)
    own = model.thresholds or {}
    return Thresholds(
        auto_link=own.get("auto_link", default.auto_link),
        review=own.get("review", default.review),
        sparse_auto_link=own.get("sparse_auto_link", default.sparse_auto_link),
    )


def require_active_model(entity_type: str) -> MatchModel:
    model = active_model(entity_type)
    if model is None:
        raise NoActiveModel(entity_type)
    return model


# --------------------------------------------------------------------------- explanations


NULL_GAMMA = -1
# How a comparison level reads on the candidate page: the colour of the attributes it covers.
SAME, CLOSE, DIFFER, NONE = "same", "close", "differ", "none"


@cache
def declared_labels() -> dict[tuple[str, str], str]:
    """(comparison output column, level SQL) → the label the spec declares for that level, over
    every spec. A stored model's levels are looked up here by their SQL, so a model trained
    before a label was reworded still speaks the spec's current words."""
    labels = {}
    for spec in SPECS.values():
        for comparison in spec.comparisons:
            described = comparison.get_comparison("duckdb").as_dict()
            column = described["output_column_name"]
            for level in described["comparison_levels"]:
                label = level.get("label_for_charts")
                if label:
                    labels[(column, level["sql_condition"])] = label
    return labels


def level_label(column: str, level: dict) -> str:
    """The words for one level of a stored model: the spec's declared label for its SQL, else
    the label the model was trained with, else its SQL."""
    declared = declared_labels().get((column, level.get("sql_condition", "")))
    return declared or level.get("label_for_charts") or level.get("sql_condition", "")


def level_labels(model: dict) -> dict[str, dict[int, str]]:
    """comparison output column → gamma value → level label (the null level is -1), in the
    words the specs declare (`matching.specs.said`)."""
    labels = {}
    for comparison in model.get("comparisons", []):
        column = comparison.get("output_column_name")
        levels = comparison.get("comparison_levels", [])
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        by_gamma = {NULL_GAMMA: "no value on one side"}
        for level in levels:
            if level.get("is_null_level"):
                by_gamma[NULL_GAMMA] = level_label(column, level)
        for position, level in enumerate(non_null):
            by_gamma[len(non_null) - 1 - position] = level_label(column, level)
        labels[column] = by_gamma
    return labels


def tone(gamma: int, top_gamma: int, weight: float) -> str:
    """How a level reads: the null level says nothing (none), the comparison's first level is
    agreement (same), a lower level is partial agreement while it still counts for a match
    (close) and disagreement once it counts against (differ)."""
    if gamma == NULL_GAMMA:
        return NONE
    if gamma == top_gamma:
        return SAME
    return CLOSE if weight >= 0 else DIFFER


def plain(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def explanation(row, labels: dict[str, dict[int, str]]) -> dict:
    """Per comparison: level (gamma), its label and tone, both values, match-weight
    contribution (tf included)."""
    explained = {}
    for column, by_gamma in labels.items():
        gamma = row.get(f"gamma_{column}")
        if gamma is None or pd.isna(gamma):
            continue
        gamma = int(gamma)
        weight = float(row.get(f"mw_{column}", 0.0) or 0.0)
        tf_adjust = row.get(f"mw_tf_adj_{column}")
        if tf_adjust is not None and not pd.isna(tf_adjust):
            weight += float(tf_adjust)
        explained[column] = {
            "level": by_gamma.get(gamma, str(gamma)),
            "gamma": gamma,
            "tone": tone(gamma, max(by_gamma), weight),
            "left": plain(row.get(f"{column}_l")),
            "right": plain(row.get(f"{column}_r")),
            "match_weight": round(weight, 4),
        }
        _say_generic(explained[column], column, row)
    return explained


def _say_generic(explained: dict, column: str, row) -> None:
    """A value both sides share but that is generic (`matching.generic`) was not compared:
    say so, and show it. Where the comparison still compared something (a shared street
    address nulled, the cities compared) the level stays and the note is added."""
    check = generic.CHECKS_BY_COMPARISON.get(column)
    if check is None:
        return
    companion = check[0].companion
    said = generic.note(column, plain(row.get(f"{companion}_l")), plain(row.get(f"{companion}_r")))
    if said is None:
        return
    words, value = said
    explained["note"] = words
    if explained["gamma"] == NULL_GAMMA:
        explained.update(level=words, tone=NONE, match_weight=0.0)
    if check[0].column == column:
        explained["left"] = explained["right"] = value


# ---------------------------------------------------------------------------------- frames


def scoring_frame(spec: MatchSpec, model: MatchModel, records) -> pa.Table:
    """The frame of `records` (rows of `matching.frame.RECORD_FIELDS`, references resolved as
    the batch frame resolves them) with stored term frequencies for the model's tf-adjusted
    columns."""
    frame = frame_from_records(spec, records)
    return frame_with_frequencies(spec.entity_type, frame, model)


def frame_with_frequencies(
    entity_type: str, frame: pa.Table, model: MatchModel, *, values_of: pa.Table | None = None
) -> pa.Table:
    """`frame` plus the stored ``tf_<column>`` columns of `model` — what
    `matching.frequencies.with_frequencies` adds, read on PostgreSQL with one prepared query
    over two binary array parameters (a long ``IN`` list per column costs more to build than
    to run, and quoting each element of a text array almost as much). Each value is looked
    up through the index (a lateral subquery; one row per value, as `frequencies.rebuild`
    stores them): planned as a join, ~3,000 values made PostgreSQL hash the whole table
    (185,528 rows at 100,000 customers: 100-140 ms against 18 ms).

    With `values_of` (rows of `frame` that every pair to be scored names, such as the changed
    records of incremental matching), only their values are looked up, when the model's
    term-frequency adjustments all sit on exact-match levels of their own column: a pair's
    adjustment then uses the frequency of a value both records share, which is a value of
    `values_of`; the other rows' other values could never enter a score. At 1M customers a
    batch of 1,000 changed records looks up ~5,000 values instead of ~50,000."""
    columns = tf_columns(model.settings)
    if connection.vendor != "postgresql" or not columns:
        return with_frequencies(entity_type, frame, columns)
    source = values_of if values_of is not None and tf_on_exact_levels(model.settings) else frame
    wanted = sorted(
        {(column, v) for column in columns for v in source[column].to_pylist() if v is not None}
    )
    known: dict[tuple[str, str], float] = {}
    if wanted:
        names, values = zip(*wanted, strict=True)
        with prepared_cursor() as cursor:
            cursor.execute(
                f"""select q."column", q.value, t.frequency
                    from unnest(%b::text[], %b::text[]) as q("column", value)
                    cross join lateral (
                        select frequency from {TermFrequency._meta.db_table} t
                        where t.entity_type = %s and t."column" = q."column"
                          and t.value = q.value
                        limit 1
                    ) t""",
                [list(names), list(values), entity_type],
            )
            known = {(column, value): frequency for column, value, frequency in cursor}
    for column in columns:
        frequencies = [
            None if v is None else known.get((column, v)) for v in frame[column].to_pylist()
        ]
        frame = frame.append_column(f"tf_{column}", pa.array(frequencies, pa.float64()))
    return frame


# --------------------------------------------------------------------------------- scoring


def _sql_for(model: MatchModel, left: pa.Table, right: pa.Table) -> str:
    """Splink's compare-records SQL for `model`, over LEFT_VIEW/RIGHT_VIEW joined on pair_no.
    Kept per thread by id, version and training time: a reused id (SQLite after a rolled-back
    test) with another model's settings is not mistaken for the one compiled before."""
    cache = getattr(_compiled, "sql", None)
    if cache is None:
        cache = _compiled.sql = {}
    key = (model.pk, model.version, model.trained_at)
    if key not in cache:
        con = local_connection()
        db = DuckDBAPI(con)
        result = compare_records(
            left.slice(0, 1),
            right.slice(0, 1),
            dict(model.settings),
            db,
            join_condition="l.pair_no = r.pair_no",
        )
        sql = result.sql_used_to_create
        created = set(re.findall(r"__splink__compare_records_(?:left|right)_\w+", sql))
        for name in created:
            sql = sql.replace(name, LEFT_VIEW if "_left_" in name else RIGHT_VIEW)
        for name in created:  # Arrow inputs are registered as views
            con.unregister(name)
        con.execute(f'drop table if exists "{result.physical_name}"')
        cache[key] = sql
    return cache[key]


# The pairs are loaded into two temp tables of this thread's scoring connection and the compare
# SQL is a prepared statement over them: parsing, binding and planning Splink's SQL (tens of
# milliseconds) happen once per model and thread, not once per call — as long as nothing
# changes that connection's catalog after the PREPARE (a view registered, a table created:
# DuckDB then binds the statement again at every EXECUTE) and its optimizer is off
# (`matching.engine.scoring_connection`). The tables are emptied after every call, so a
# load is an INSERT alone.
# DuckDB keeps what a DELETE removed from a table for as long as the table lives (about 1 KiB
# a call, found by bench/soak.py: a worker grew without bound), so the two tables are created
# anew, and the statement prepared again, every RECREATE_AFTER calls.
LEFT_TABLE, RIGHT_TABLE = "__keystone_score_left_t", "__keystone_score_right_t"
SOURCE_VIEW = "__keystone_score_source"
RECREATE_AFTER = 1000


@dataclass
class _Prepared:
    key: tuple
    con: duckdb.DuckDBPyConnection
    statement: str
    columns: list[str] = field(default_factory=list)
    uses: int = 0


def _prepared(model: MatchModel, left: pa.Table, right: pa.Table) -> _Prepared:
    con = scoring_connection()
    key = (model.pk, model.version, model.trained_at, left.schema)
    state = getattr(_compiled, "prepared", None)
    if state is not None and state.key == key and state.con is con and state.uses < RECREATE_AFTER:
        state.uses += 1
        return state
    sql = _sql_for(model, left, right)
    for table, sample in ((LEFT_TABLE, left), (RIGHT_TABLE, right)):
        con.register(SOURCE_VIEW, sample.slice(0, 0))
        try:
            con.execute(f'create or replace temp table "{table}" as select * from {SOURCE_VIEW}')
        finally:
            con.unregister(SOURCE_VIEW)
    number = getattr(_compiled, "statements", 0) + 1
    _compiled.statements = number
    statement = f"__keystone_score_{number}"
    prepared_sql = sql.replace(LEFT_VIEW, f'"{LEFT_TABLE}"').replace(RIGHT_VIEW, f'"{RIGHT_TABLE}"')
    con.execute(f"PREPARE {statement} AS {prepared_sql}")
    if state is not None and state.con is con:
        con.execute(f"DEALLOCATE PREPARE {state.statement}")
    _compiled.prepared = _Prepared(key=key, con=con, statement=statement)
    return _compiled.prepared


def _load(con, table: str, rows: pa.Table) -> None:
    """Insert `rows` into `table`, read by DuckDB's replacement scan of the local name `rows`:
    not registered as a view, which is a catalog change, after which DuckDB binds the
    prepared statement again at every EXECUTE (tens of milliseconds for Splink's SQL)."""
    con.execute(f'insert into "{table}" select * from rows')


def score_pairs(model: MatchModel, frame: pa.Table, pairs: list[tuple[int, int]]) -> pd.DataFrame:
    """Score `pairs` of record ids, all present in `frame` (a `scoring_frame`). One row per
    pair with Splink's predict columns (unique_id_l/_r, match_weight, match_probability,
    gamma_*, mw_*, the compared values)."""
    if not pairs:
        return pd.DataFrame(columns=["unique_id_l", "unique_id_r", "match_probability"])
    # Fetched by DuckDB as columns (not a Python tuple per row).
    return _scored(model, frame, pairs, lambda result: result.df())


ScoredRow = dict[str, Any]


@dataclass(frozen=True)
class ScoredColumns:
    """Scores as DuckDB fetched them, column by column (numpy arrays; masked where NULL):
    no DataFrame of ~80 columns, which for a few pairs cost as much as scoring them, and
    no Python object per value, which for thousands cost more (incremental matching)."""

    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["match_probability"]) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def at_least(self, probability: float) -> list[int]:
        """The positions of the pairs scored at least `probability`, in order."""
        if not len(self):
            return []
        return np.flatnonzero(self.columns["match_probability"] >= probability).tolist()

    def row(self, position: int) -> ScoredRow:
        """One pair's values as Python objects, NULL as None (what `explanation` reads)."""
        return {name: _plain_value(values[position]) for name, values in self.columns.items()}


def _plain_value(value: Any) -> Any:
    if value is np.ma.masked:
        return None
    return value.item() if isinstance(value, np.generic) else value


def score_pair_columns(
    model: MatchModel, frame: pa.Table, pairs: list[tuple[int, int]]
) -> ScoredColumns:
    """`score_pairs` column by column (`ScoredColumns`)."""
    if not pairs:
        return ScoredColumns({})
    return _scored(model, frame, pairs, lambda result: ScoredColumns(result.fetchnumpy()))


def _scored(model: MatchModel, frame: pa.Table, pairs: list[tuple[int, int]], fetch):
    position = {uid: i for i, uid in enumerate(frame["unique_id"].to_pylist())}
    numbers = pa.array(range(len(pairs)), pa.int64())
    left = frame.take([position[a] for a, _ in pairs]).append_column("pair_no", numbers)
    right = frame.take([position[b] for _, b in pairs]).append_column("pair_no", numbers)
    prepared = _prepared(model, left, right)
    con = prepared.con
    try:
        _load(con, LEFT_TABLE, left)
        _load(con, RIGHT_TABLE, right)
        # The whole result is consumed, so the connection is free again.
        return fetch(con.execute(f"EXECUTE {prepared.statement}"))
    finally:
        con.execute(f'delete from "{LEFT_TABLE}"')
        con.execute(f'delete from "{RIGHT_TABLE}"')


# ----------------------------------------------------------------------------- explain_pair


@dataclass(frozen=True)
class Explanation:
    """Why the model scores two source records as it does: per comparison the level, both
    values and the match-weight contribution; the sum (with the prior) and the probability."""

    left_record_id: int
    right_record_id: int
    entity_type: str
    model_version: int
    match_weight: float
    probability: float
    attributes: dict[str, dict] = field(default_factory=dict)
    # The pair's auto-link bar (`Thresholds.auto_link_bars`): the sparse bar when both are
    # organizations carrying none of the spec's telling attributes, else the general one.
    auto_link: float | None = None

    def as_dict(self) -> dict:
        return {
            "left_record_id": self.left_record_id,
            "right_record_id": self.right_record_id,
            "entity_type": self.entity_type,
            "model_version": self.model_version,
            "match_weight": self.match_weight,
            "probability": self.probability,
            "attributes": self.attributes,
            "auto_link": self.auto_link,
        }


def explain_pair(*, left_record_id: int, right_record_id: int) -> Explanation:
    """Score two source records of one entity type with its active model and explain it.

    Raises SourceRecordNotFound, NoActiveModel, or ValueError for records of different
    entity types. Writes nothing.
    """
    from mdm.models import SourceRecord

    rows = {
        record[0]: (entity_type, record)
        for entity_type, *record in SourceRecord.objects.filter(
            pk__in=[left_record_id, right_record_id]
        ).values_list("entity_type", *RECORD_FIELDS)
    }
    for pk in (left_record_id, right_record_id):
        if pk not in rows:
            raise SourceRecordNotFound(pk)
    entity_type = rows[left_record_id][0]
    if rows[right_record_id][0] != entity_type:
        raise ValueError("a pair compares two records of the same entity type")
    spec = get_spec(entity_type)
    model = require_active_model(entity_type)
    frame = scoring_frame(spec, model, [rows[pk][1] for pk in sorted(set(rows))])
    scored = score_pairs(model, frame, [(left_record_id, right_record_id)])
    row = scored.iloc[0]
    return Explanation(
        left_record_id=left_record_id,
        right_record_id=right_record_id,
        entity_type=entity_type,
        model_version=model.version,
        match_weight=float(row["match_weight"]),
        probability=float(row["match_probability"]),
        attributes=explanation(row, level_labels(model.settings)),
        auto_link=float(thresholds_of(model).auto_link_bars(spec, scored)[0]),
    )
