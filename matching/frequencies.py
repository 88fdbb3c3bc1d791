"""Term frequencies: how common each value of a tf-adjusted column is (Splink's ``tf_<col>``).

A batch run computes them from the whole frame with Splink's formula (count of the value over
the count of non-null values) and stores them (`TermFrequency`); incremental scoring, the probe
and `explain_pair` read the stored values for just the values they meet, so a pair scores as
the batch run scored it. A value the table has never seen gets no adjustment (Splink's rule
for a missing frequency) until the next batch run.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from django.db import transaction
from django.db.models import Q

from matching.engine import local_connection
from matching.models import TermFrequency
from mdm.db.arrow import constant, insert_table

MAX_STORED_LENGTH = 1000
# What `compute` returns, also with no column to compute: `rebuild` reads these types.
SCHEMA = pa.schema([("column", pa.string()), ("value", pa.string()), ("frequency", pa.float64())])


def tf_columns(model: dict) -> tuple[str, ...]:
    """The input columns whose comparisons carry term-frequency adjustments in `model`."""
    columns: list[str] = []
    for comparison in model.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            column = level.get("tf_adjustment_column")
            if column and column not in columns:
                columns.append(column)
    return tuple(columns)


def tf_on_exact_levels(model: dict) -> bool:
    """Every level of `model` with a term-frequency adjustment is an exact match on the
    adjusted column itself (``"x_l" = "x_r"`` adjusted by x's frequency)."""
    for comparison in model.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            column = level.get("tf_adjustment_column")
            if column and level.get("sql_condition", "").strip() != f'"{column}_l" = "{column}_r"':
                return False
    return True


def compute(
    frame: pa.Table, columns: tuple[str, ...], *, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    """(column, value, frequency) for every non-null value of `columns` in `frame`, typed as
    `SCHEMA` (an empty table when the model adjusts no column)."""
    if not columns:
        return SCHEMA.empty_table()
    con = con or local_connection()
    view = "__keystone_tf_frame"
    con.register(view, frame)
    try:
        sql = "\nunion all\n".join(
            f"""select '{column}' as "column", cast("{column}" as varchar) as value,
                   cast(count(*) as float8) / (select count("{column}") from {view}) as frequency
                from {view} where "{column}" is not null group by "{column}" """
            for column in columns
        )
        return con.sql(sql).to_arrow_table().cast(SCHEMA)
    finally:
        con.unregister(view)


def rebuild(entity_type: str, frequencies: pa.Table) -> int:
    """Replace the stored frequencies of `entity_type` by `frequencies`, in one transaction."""
    keep = pc.less_equal(pc.utf8_length(frequencies["value"]), MAX_STORED_LENGTH)
    frequencies = frequencies.filter(keep)
    with transaction.atomic():
        TermFrequency.objects.filter(entity_type=entity_type).delete()
        return insert_table(
            TermFrequency,
            pa.table(
                {
                    "entity_type": constant(entity_type, frequencies.num_rows),
                    "column": frequencies["column"],
                    "value": frequencies["value"],
                    "frequency": frequencies["frequency"],
                }
            ),
        )


def with_frequencies(entity_type: str, frame: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """`frame` plus a ``tf_<column>`` column for each of `columns`, read from the stored
    frequencies in one query (null where the value is unknown)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for column in columns:
        wanted[column].update(v for v in frame[column].to_pylist() if v is not None)
    known: dict[tuple[str, str], float] = {}
    condition = Q()
    for column, values in wanted.items():
        if values:
            condition |= Q(column=column, value__in=sorted(values))
    if condition:
        known = {
            (column, value): frequency
            for column, value, frequency in TermFrequency.objects.filter(
                condition, entity_type=entity_type
            ).values_list("column", "value", "frequency")
        }
    for column in columns:
        frequencies = [
            None if v is None else known.get((column, v)) for v in frame[column].to_pylist()
        ]
        frame = frame.append_column(f"tf_{column}", pa.array(frequencies, pa.float64()))
    return frame
