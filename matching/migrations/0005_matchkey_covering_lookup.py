"""On PostgreSQL the blocking-key lookup index carries the record id (INCLUDE), so a lookup
reads the index only, not one heap page per matching key (an incremental batch of 1,000 at
1M customers: key lookup 0.34 s -> 0.15 s). The model still declares the plain index: Django
creates covering indexes on PostgreSQL only, and SQLite keeps the plain one. A batch
rebuild recreates the index from its stored definition, so the INCLUDE stays."""

from django.db import migrations

TABLE = "matching_matchkey"
INDEX = "matchkey_lookup"


def covering(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(
        f"CREATE INDEX {INDEX} ON {TABLE} (entity_type, name, value) INCLUDE (record_id)"
    )


def plain(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(f"CREATE INDEX {INDEX} ON {TABLE} (entity_type, name, value)")


class Migration(migrations.Migration):
    dependencies = [("matching", "0004_matchkey_no_fk_constraint")]

    operations = [migrations.RunPython(covering, plain)]
