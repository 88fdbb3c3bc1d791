"""python manage.py export_xref ENTITY [--output FILE]"""

from django.core.management.base import BaseCommand

from mdm.entities import ENTITIES
from mdm.management.csv_output import csv_writer
from mdm.models import SourceRecord


class Command(BaseCommand):
    help = "CSV golden_id,source_system,source_key for every live source record of ENTITY."

    def add_arguments(self, parser):
        parser.add_argument("entity", choices=sorted(ENTITIES))
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, entity: str, output: str | None, **options):
        rows = (
            SourceRecord.objects.filter(entity_type=entity, deleted=False, golden__isnull=False)
            .order_by("golden_id", "source_system__code", "source_key")
            .values_list("golden_id", "source_system__code", "source_key")
        )
        count = 0
        with csv_writer(output, self.stdout) as writer:
            writer.writerow(["golden_id", "source_system", "source_key"])
            for row in rows.iterator(chunk_size=5000):
                writer.writerow(row)
                count += 1
        if output:
            self.stderr.write(f"wrote {count} cross-references to {output}")
