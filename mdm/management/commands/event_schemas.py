"""Print the event contracts: every event type's JSON Schema (JSON), or docs/events.md."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mdm.contracts import event_schemas, events_markdown


class Command(BaseCommand):
    help = "Print every event type's JSON Schema, or (--markdown) docs/events.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--markdown", action="store_true", help="docs/events.md")

    def handle(self, *args: Any, markdown: bool = False, **options: Any) -> None:
        if markdown:
            self.stdout.write(events_markdown(), ending="")
        else:
            self.stdout.write(json.dumps(event_schemas(), indent=2))
