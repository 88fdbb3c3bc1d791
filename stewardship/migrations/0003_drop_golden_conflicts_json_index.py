"""The "unresolved conflicts" views read `GoldenRecord.has_conflicts` now (indexed by
`golden_open_conflicts`, mdm 0003): the JSON-path index of 0002 only slowed every insert."""

from django.db import migrations

INDEX = "stewardship_golden_conflicts"
CREATE = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON mdm_goldenrecord (entity_type, updated_at DESC, id) "
    "WHERE status = 'active' "
    """AND jsonb_path_exists(lineage, '$.*.runner_ups[0] ? (@.type() == "object")')"""
)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


class Migration(migrations.Migration):
    dependencies = [
        ("stewardship", "0002_golden_conflicts_index"),
        ("mdm", "0003_golden_partial_indexes_and_conflict_flag"),
    ]

    operations = [migrations.RunPython(drop, create)]
