"""python manage.py check_identifiers [--entity E ...]: golden records with conflicting IDs."""

from django.core.management.base import BaseCommand, CommandError

from mdm.entities import ENTITIES
from mdm.identifiers import label
from mdm.selectors import conflicting_identifier_goldens


class Command(BaseCommand):
    help = (
        "List active golden records whose members hold two different valid hard identifiers "
        "of one kind (tax IDs, LEIs, GTINs, contract numbers within a system); exit 1 if any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--entity", action="append", choices=sorted(ENTITIES))

    def handle(self, *args, entity, **options):
        total = 0
        for name in entity or [e for e in ENTITIES if ENTITIES[e].identifiers]:
            for found in conflicting_identifier_goldens(name):
                total += 1
                text = "; ".join(
                    f"{label(name, kind)}: {' / '.join(values)}"
                    for kind, values in found.conflicts.items()
                )
                self.stdout.write(f"{found.golden_id} conflicting {text}")
        self.stdout.write(f"{total} golden records with conflicting identifiers")
        if total:
            raise CommandError(f"{total} golden records with conflicting identifiers")
