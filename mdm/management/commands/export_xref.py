"""python manage.py export_xref ENTITY [--output FILE]"""

import csv

from django.core.management.base import BaseCommand

from mdm.entities import ENTITIES
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
        handle = open(output, "w", newline="", encoding="utf-8") if output else self.stdout._out
        try:
            writer = csv.writer(handle)
            writer.writerow(["golden_id", "source_system", "source_key"])
            count = 0
            for row in rows.iterator(chunk_size=5000):
                writer.writerow(row)
                count += 1
        finally:
            if output:
                handle.close()
        if output:
            self.stderr.write(f"wrote {count} cross-references to {output}")
