"""JSON columns compressed with lz4 instead of PostgreSQL's default pglz.

A golden record's lineage (~2 kB of text for a customer) pushes the row past PostgreSQL's
2 kB TOAST threshold, so every insert compressed it — with pglz, a sizeable share of
ingest's database time. lz4 compresses to about the same size several times faster
(docs/bench-log/2026-11-26.md). Only values written from now on are compressed with it;
stored ones stay readable as they are. Servers built without lz4 keep pglz (a notice, not a failure).
PostgreSQL only: SQLite has no column compression.
"""

from django.db import migrations

TABLES = {
    "mdm_goldenrecord": ("values", "lineage"),
    "mdm_historicalgoldenrecord": ("values", "lineage"),
    "mdm_sourcerecord": ("raw", "attributes", "match_keys", "invalid", "extra", "references"),
    "mdm_historicalsourcerecord": (
        "raw",
        "attributes",
        "match_keys",
        "invalid",
        "extra",
        "references",
    ),
    "mdm_outboxevent": ("payload",),
}


def _set(method: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, columns in TABLES.items():
            alter = ", ".join(f'ALTER COLUMN "{c}" SET COMPRESSION {method}' for c in columns)
            schema_editor.execute(
                f"DO $$ BEGIN ALTER TABLE {table} {alter}; "
                "EXCEPTION WHEN feature_not_supported THEN "
                f"RAISE NOTICE USING MESSAGE = '{table} keeps its compression: ' || SQLERRM; "
                "END $$"
            )

    return run


class Migration(migrations.Migration):
    dependencies = [("mdm", "0003_golden_partial_indexes_and_conflict_flag")]

    operations = [migrations.RunPython(_set("lz4"), _set("pglz"))]
