"""python manage.py replay_rejections [--id N ...] [--entity E] [--system S]"""

from django.core.management.base import BaseCommand

from mdm.models import IngestRejection, RejectionStatus
from mdm.services.rejections import replay_rejections


class Command(BaseCommand):
    help = "List open ingest rejections, or replay them with --replay."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids")
        parser.add_argument("--entity")
        parser.add_argument("--system")
        parser.add_argument("--replay", action="store_true", help="re-ingest the selected rows")

    def handle(self, *args, ids, entity, system, replay, **options):
        rejections = IngestRejection.objects.filter(status=RejectionStatus.OPEN).order_by("id")
        if ids:
            rejections = rejections.filter(pk__in=ids)
        if entity:
            rejections = rejections.filter(entity_type=entity)
        if system:
            rejections = rejections.filter(source_system=system)
        if not replay:
            for r in rejections:
                where = f"{r.origin}:{r.line_number}" if r.line_number else r.origin
                self.stdout.write(f"#{r.pk} {r.source_system}/{r.entity_type} {where} {r.reason}")
            self.stdout.write(f"{rejections.count()} open rejections")
            return
        counts = replay_rejections(rejections=list(rejections), actor="command:replay_rejections")
        self.stdout.write(
            f"replayed {counts['replayed']}, still rejected {counts['still_rejected']}"
        )
