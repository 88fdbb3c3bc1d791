"""python manage.py generate_demo_data [--output DIR] [--seed N] [--customers N]"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.data import generate_demo_data


class Command(BaseCommand):
    help = (
        "Write deterministic multi-source demo CSVs (crm, erp, billing, success, support) with "
        "an exact ground_truth.csv and manifest.json; load them with load_demo_data."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", type=Path, default=None, help="directory (default: VAR_DIR/demo)"
        )
        parser.add_argument("--seed", type=int, default=42, help="same seed, same bytes")
        parser.add_argument("--customers", type=int, default=1000, help="real-world customers")

    def handle(self, *args, output: Path | None, seed: int, customers: int, **options):
        if customers < 1:
            raise CommandError("--customers must be at least 1")
        directory = output or settings.VAR_DIR / "demo"
        manifest = generate_demo_data(output_dir=directory, seed=seed, customers=customers)
        width = max(len(demo_file.path) for demo_file in manifest.files)
        for demo_file in manifest.files:
            self.stdout.write(f"{demo_file.path:<{width}}  {demo_file.rows:>7} rows")
        self.stdout.write(f"{'total':<{width}}  {manifest.total_rows:>7} rows")
        self.stdout.write(f"ground truth: {directory / manifest.ground_truth}")
