"""python manage.py load_demo_data [DIR] — load every file generate_demo_data wrote."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Load the demo data set (manifest.json in DIR) through load_source, file by file."

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", type=Path, default=None)

    def handle(self, *args, directory: Path | None, **options):
        directory = directory or settings.VAR_DIR / "demo"
        manifest_path = directory / "manifest.json"
        if not manifest_path.is_file():
            raise CommandError(f"{manifest_path} not found: run generate_demo_data first")
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["files"]:
            call_command(
                "load_source",
                str(directory / entry["path"]),
                system=entry["system"],
                entity=entry["entity"],
                reason="demo data",
                stdout=self.stdout,
                stderr=self.stderr,
            )
