"""python manage.py load_source PATH --system CODE --entity ENTITY"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from mdm.entities import ENTITIES
from mdm.errors import MdmError
from mdm.mappings import compile_mapping, read_mapping_file
from mdm.services.ingest import ACTIVE_MAPPING
from mdm.services.load import load_file
from mdm.source_files import UnsupportedFile, count_records

SHOWN_PROBLEMS = 50


class Command(BaseCommand):
    help = (
        "Load a CSV or NDJSON file of source records (columns: source_key, canonical attributes, "
        "optional source_updated_at and reference keys), or of native records through a "
        "source mapping (--mapping FILE, else the system's active mapping if it has one). "
        "Bad rows become rejections."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--system", required=True, help="source system code, created if new")
        parser.add_argument("--entity", required=True, choices=sorted(ENTITIES))
        parser.add_argument("--reason", default="", help="change reason written to history")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--mapping",
            type=Path,
            default=None,
            help="a source mapping file (.json, .yaml) for this file's native records "
            "(default: the system's active mapping, if any)",
        )
        parser.add_argument(
            "--canonical",
            action="store_true",
            help="the file holds canonical records: apply no mapping",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=None,
            help="worker processes (PostgreSQL only; default: one per CPU, at most 4, "
            "for files of 10,000 records or more)",
        )

    def handle(self, *args, path: Path, system: str, entity: str, reason: str, **options):
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        if options["jobs"] is not None and options["jobs"] < 1:
            raise CommandError("--jobs must be 1 or more")
        if options["mapping"] is not None and options["canonical"]:
            raise CommandError("--mapping and --canonical exclude each other")
        try:
            mapping = None if options["canonical"] else ACTIVE_MAPPING
            if options["mapping"] is not None:
                mapping = compile_mapping(
                    read_mapping_file(options["mapping"]), entity_type=entity, system=system
                )
            total = count_records(path)
            bar = tqdm(
                total=total,
                unit="rec",
                desc=path.name,
                disable=options["no_progress"] or total < 5000,
                file=self.stderr._out,
            )
            with bar:
                summary = load_file(
                    path,
                    entity_type=entity,
                    system_code=system,
                    actor=f"command:load_source:{system}",
                    reason=reason or f"load_source {path.name}",
                    jobs=options["jobs"],
                    on_progress=bar.update,
                    mapping=mapping,
                )
        except (UnsupportedFile, MdmError) as error:
            raise CommandError(str(error)) from error
        for line, problem in summary.rejections[:SHOWN_PROBLEMS]:
            self.stdout.write(f"rejected line {line}: {problem}")
        for line, attribute, problem in summary.flagged[:SHOWN_PROBLEMS]:
            self.stdout.write(f"flagged line {line}: {attribute}: {problem} (kept raw)")
        hidden = max(len(summary.rejections) - SHOWN_PROBLEMS, 0) + max(
            len(summary.flagged) - SHOWN_PROBLEMS, 0
        )
        if hidden:
            self.stdout.write(f"… {hidden} more; rejections are listed in the admin")
        self.stdout.write(f"{path.name}: {summary.line()}")
