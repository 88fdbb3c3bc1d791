"""python manage.py export_golden ENTITY [--output FILE]"""

from django.core.management.base import BaseCommand

from mdm.entities import ENTITIES, get_entity
from mdm.management.csv_output import csv_writer
from mdm.models import GoldenRecord


class Command(BaseCommand):
    help = "CSV of ENTITY's golden records: id, status, merged_into, attributes and relations."

    def add_arguments(self, parser):
        parser.add_argument("entity", choices=sorted(ENTITIES))
        parser.add_argument("--output", help="file to write (default: standard output)")
        parser.add_argument("--all", action="store_true", help="include merged and retired records")

    def handle(self, *args, entity: str, output: str | None, all: bool, **options):
        declaration = get_entity(entity)
        relations = [r.relation for r in declaration.references]
        records = GoldenRecord.objects.filter(entity_type=entity).order_by("id")
        if not all:
            records = records.filter(status="active")
        columns = ["golden_id", "golden_status", "merged_into", *declaration.attribute_names]
        columns += [f"{relation}_id" for relation in relations]
        count = 0
        fields = ["id", "status", "merged_into_id", "values", *[f"{r}_id" for r in relations]]
        with csv_writer(output, self.stdout) as writer:
            writer.writerow(columns)
            for row in records.values_list(*fields).iterator(chunk_size=5000):
                golden_id, status, merged_into, values, *related = row
                writer.writerow(
                    [golden_id, status, merged_into or ""]
                    + [_cell(values.get(name)) for name in declaration.attribute_names]
                    + [r or "" for r in related]
                )
                count += 1
        if output:
            self.stderr.write(f"wrote {count} golden records to {output}")


def _cell(value):
    return "" if value is None else value
