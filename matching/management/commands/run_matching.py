"""`manage.py run_matching ENTITY [--retrain]`: batch matching, synchronously."""

from django.core.management.base import BaseCommand, CommandError

from matching.errors import NothingToLearn
from matching.services import run_batch_matching
from matching.specs import SPECS


class Command(BaseCommand):
    help = "Match all live source records of ENTITY and apply auto-links; queue doubtful pairs."

    def add_arguments(self, parser):
        parser.add_argument("entity", choices=sorted(SPECS))
        parser.add_argument(
            "--retrain",
            action="store_true",
            help="Train a new model version: the first one is used at once; a later one is "
            "staged for a steward to activate (nothing is applied).",
        )

    def handle(self, *args, entity, retrain, **options):
        try:
            summary = run_batch_matching(
                entity_type=entity, actor="command:run_matching", retrain=retrain
            )
        except (ValueError, NothingToLearn) as error:
            raise CommandError(str(error)) from error
        for note in summary.training_notes:
            self.stdout.write(f"training: {note}")
        if summary.staged_model_version:
            self.stdout.write(
                f"staged {entity} model v{summary.staged_model_version}: nothing applied; "
                "read what it would change and activate or discard it on the steward desk "
                "(/steward/models/)"
            )
            return
        version = f"v{summary.model_version}" if summary.model_version else "none"
        lines = [
            f"match run #{summary.run_id} ({entity}, model {version})",
            f"records:          {summary.records}",
            f"pairs scored:     {summary.pairs_scored}",
            f"auto-linked:      {summary.merges} merges",
            f"sent to review:   {summary.sent_to_review}",
            f"golden records:   {summary.goldens_before} -> {summary.goldens_after}",
            f"seconds:          {summary.seconds:.2f}",
        ]
        self.stdout.write("\n".join(lines))
