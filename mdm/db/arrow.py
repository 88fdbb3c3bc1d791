"""Bulk inserts of Arrow tables: COPY on PostgreSQL (CSV streamed in batches), `bulk_create`
elsewhere. Used for the derived tables a batch run rebuilds (blocking keys, term frequencies),
where a query per row would make applying results the bottleneck."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection, models

COPY_BATCH = 100_000


def insert_table(model: type[models.Model], table: pa.Table) -> int:
    """Insert the rows of `table` (column names = the model's column names) into `model`."""
    if table.num_rows == 0:
        return 0
    if connection.vendor == "postgresql":
        columns = ", ".join(connection.ops.quote_name(c) for c in table.column_names)
        name = connection.ops.quote_name(model._meta.db_table)
        sql = f"COPY {name} ({columns}) FROM STDIN WITH (FORMAT csv)"
        options = pa_csv.WriteOptions(include_header=False)
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for batch in table.to_batches(max_chunksize=COPY_BATCH):
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, write_options=options)
                copy.write(buffer.getvalue())
        return table.num_rows
    fields = {f.column: f.attname for f in model._meta.concrete_fields}
    names = [fields[c] for c in table.column_names]
    model._default_manager.bulk_create(
        (model(**dict(zip(names, row, strict=True))) for row in _rows(table)), batch_size=5000
    )
    return table.num_rows


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    for batch in table.to_batches(max_chunksize=COPY_BATCH):
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def constant(value: str, length: int) -> pa.Array:
    return pa.array([value] * length, pa.string())
