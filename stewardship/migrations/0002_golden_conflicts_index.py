"""A partial index for the stewardship "unresolved conflicts" views (dashboard count and the
golden record list filtered on conflicts), PostgreSQL only.

`stewardship.selectors.with_conflicts` tests each active golden record's lineage with a JSON
path; without this index that reads every golden record (1-2 s at 100,000 on a loaded
machine). The predicate here must stay textually the same as `CONFLICT_PATH` there, or the
planner stops using the index. On SQLite nothing is created (the selector uses a text search).
"""

from django.db import migrations

INDEX = "stewardship_golden_conflicts"
CREATE = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON mdm_goldenrecord (entity_type, updated_at DESC, id) "
    "WHERE status = 'active' "
    """AND jsonb_path_exists(lineage, '$.*.runner_ups[0] ? (@.type() == "object")')"""
)
DROP = f"DROP INDEX IF EXISTS {INDEX}"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("stewardship", "0001_initial"),
        ("mdm", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop)]
