"""python manage.py load_demo_data [DIR] — load every file generate_demo_data wrote."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo.native import mapping_spec
from mdm.selectors import active_mapping
from mdm.services.mappings import save_mapping_version


class Command(BaseCommand):
    help = (
        "Load the demo data set (manifest.json in DIR) through load_source, file by file: "
        "each system's native-shaped file through its shipped mapping (demo/mappings/, stored "
        "as the system's active mapping), or with --canonical the canonical CSVs."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", type=Path, default=None)
        parser.add_argument(
            "--canonical", action="store_true", help="load the canonical CSVs, no mappings"
        )

    def handle(self, *args, directory: Path | None, canonical: bool, **options):
        directory = directory or settings.VAR_DIR / "demo"
        manifest_path = directory / "manifest.json"
        if not manifest_path.is_file():
            raise CommandError(f"{manifest_path} not found: run generate_demo_data first")
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["files"]:
            native = entry.get("native") and not canonical
            if native:
                self._install_mapping(entry["system"], entry["entity"])
            call_command(
                "load_source",
                str(directory / (entry["native"] if native else entry["path"])),
                system=entry["system"],
                entity=entry["entity"],
                reason="demo data",
                canonical=not native,
                stdout=self.stdout,
                stderr=self.stderr,
            )

    def _install_mapping(self, system: str, entity: str) -> None:
        """The shipped mapping as the system's active one (a new version only if it changed)."""
        spec = mapping_spec(system, entity)
        current = active_mapping(system_code=system, entity_type=entity)
        if current is not None and current.spec == spec:
            return
        version = save_mapping_version(
            system_code=system,
            entity_type=entity,
            spec=spec,
            actor="command:load_demo_data",
            note="demo mapping (demo/mappings/)",
        )
        self.stdout.write(f"{system} {entity}: mapping v{version.version} active")
